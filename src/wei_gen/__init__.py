"""wei-gen: plain-language experiments to WEI workflows, code and configs, each checked against the real lab."""

__version__ = "0.1.0"
