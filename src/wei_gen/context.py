"""Per-run settings (LangGraph ``context_schema``) and loading them from wei_gen v2's YAML config and the environment.

Secrets (API keys, organisation) never enter the context, the state or the history: they are read from the
environment or registered in-process by :func:`register_credentials` and used only when a chat model is built.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from wei_gen.yamlio import InputError, load_yaml_file

DEFAULT_LAB = Path(__file__).resolve().parents[2] / "examples" / "labs" / "rpl_like"
OFFLINE_MODEL = "offline"
"""The model string that selects the offline planner (deterministic, no network) for an agent."""
OFFLINE_NOTICE = "offline planner: no model configured (set OPENAI_API_KEY or settings.*_model to use a model)"


class ConfigError(InputError):
    """The wei-gen config file is unusable."""


@dataclass(frozen=True)
class Context:
    """Settings of one run: a model per agent, sampling, thresholds, loop bounds and where the lab is."""

    framework_model: str = "openai:gpt-4o"
    """Model for feasibility, plan and shortlist (``provider:model``)."""
    workflow_model: str = "openai:gpt-4o"
    """Model writing the WEI workflow."""
    code_model: str = "openai:gpt-4o"
    """Model writing the experiment code (programmer)."""
    validator_model: str = "openai:gpt-4o"
    """Model writing tests for the code (test designer)."""
    config_model: str = "openai:gpt-4o"
    """Model writing instrument configs."""
    temperature: float = 0.0
    """Sampling temperature for every call."""
    feasibility_threshold: float = 0.5
    """Continue only when P(yes) is above this."""
    max_plan_attempts: int = 3
    """Bound of the plan -> check -> plan loop."""
    max_workflow_attempts: int = 3
    """Bound of the workflow -> validate -> workflow loop."""
    max_code_attempts: int = 3
    """Bound of the code -> check -> code loop."""
    sandbox_timeout: float = 60.0
    """Seconds a generated script (or its tests) may run in the sandbox."""
    max_config_attempts: int = 2
    """Bound of the config -> check -> config loop."""
    request_timeout: float = 60.0
    """Seconds per model request."""
    base_url: str = ""
    """OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp); empty = the provider's default or OPENAI_BASE_URL."""
    lab_dir: str = str(DEFAULT_LAB)
    """Lab directory used when the input names none."""
    data_dir: str = ""
    """Where sessions and the example index live; empty = ``$WEI_GEN_DATA_DIR`` or ``./.wei_gen``."""
    chroma_url: str = ""
    """A chroma server (``http://host:port``) for the example index; empty = embedded chroma under ``data_dir``."""
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for ``init_chat_model`` (non-secret)."""

    def model_for(self, agent: str) -> str:
        """The model string of an agent (``framework``, ``workflow``, ``code``, ``validator``, ``config``)."""
        value = getattr(self, f"{agent}_model", None)
        if not isinstance(value, str):
            raise ValueError(f"unknown agent '{agent}'")
        return value

    def with_model(self, model: str) -> Context:
        """The same settings with one model (``provider:model``, a bare OpenAI name, or ``offline``) for every agent."""
        models: dict[str, Any] = {key: _normalise_model(model) for key in _MODEL_KEYS}
        return replace(self, **models)

    def offline_agents(self) -> list[str]:
        """The agents served by the offline planner (model ``offline``)."""
        return [f.name.removesuffix("_model") for f in fields(self) if f.name in _MODEL_KEYS and
                getattr(self, f.name) == OFFLINE_MODEL]  # fmt: skip

    def planner_notice(self) -> str:
        """A plain sentence for the CLI and the API when the offline planner is used, else ""."""
        agents = self.offline_agents()
        if not agents:
            return ""
        which = "" if len(agents) == len(_MODEL_KEYS) else f" for {', '.join(agents)}"
        return OFFLINE_NOTICE + which


_MODEL_KEYS = {f.name for f in fields(Context) if f.name.endswith("_model")}
_SETTING_KEYS = {f.name for f in fields(Context)} - {"model_kwargs", "data_dir"}


@dataclass
class Credentials:
    """API credentials, kept out of every serialisable object."""

    openai_api_key: str = ""
    openai_organization: str = ""


_CREDENTIALS = Credentials()


def register_credentials(api_key: str = "", organization: str = "") -> None:
    """Make credentials from a config file available to model construction (process-wide, never persisted)."""
    _CREDENTIALS.openai_api_key = api_key
    _CREDENTIALS.openai_organization = organization


def credentials() -> Credentials:
    """Credentials: registered ones first, then ``OPENAI_API_KEY`` / ``OPENAI_ORG_ID`` from the environment."""
    return Credentials(
        openai_api_key=_CREDENTIALS.openai_api_key or os.environ.get("OPENAI_API_KEY", ""),
        openai_organization=_CREDENTIALS.openai_organization or os.environ.get("OPENAI_ORG_ID", ""),
    )


@dataclass(frozen=True)
class AppConfig:
    """What a wei-gen config file says: the run context plus where sessions are stored."""

    context: Context
    """Per-run settings."""
    data_dir: Path
    """Where sessions (SQLite checkpoints) and indexes live."""
    checkpointer: str = ""
    """``sqlite:PATH`` or a ``postgresql://`` URL; empty = SQLite under ``data_dir``."""
    api_tokens: tuple[str, ...] = ()
    """Bearer tokens for the REST endpoints (each token is an owner)."""
    lab_roots: tuple[Path, ...] = ()
    """Folders whose lab directories REST clients may name (``lab_dir``); empty = the default lab's parent folder."""

    def allowed_lab_roots(self) -> tuple[Path, ...]:
        """Resolved folders a REST client's ``lab_dir`` must lie in."""
        roots = self.lab_roots or (Path(self.context.lab_dir).expanduser().resolve().parent,)
        return tuple(Path(r).expanduser().resolve() for r in roots)


def default_data_dir() -> Path:
    """``$WEI_GEN_DATA_DIR`` or ``./.wei_gen``."""
    return Path(os.environ.get("WEI_GEN_DATA_DIR", ".wei_gen"))


def _normalise_model(name: str) -> str:
    """wei_gen v2 configs name bare OpenAI models (``gpt-4-turbo``); we use ``provider:model`` (and ``offline``)."""
    name = name.strip()
    return name if ":" in name or name == OFFLINE_MODEL else f"openai:{name}"


def load_config(path: Path | None = None, env: dict[str, str] | None = None) -> AppConfig:
    """Load wei_gen v2's YAML config shape (``api_keys.openai.key/org``, ``settings.*_model``) plus our settings.

    Environment: ``OPENAI_API_KEY``/``OPENAI_ORG_ID`` (credentials), ``OPENAI_BASE_URL`` (endpoint),
    ``WEI_GEN_LAB``, ``WEI_GEN_DATA_DIR``, ``WEI_GEN_CHECKPOINTER``, ``WEI_GEN_API_TOKEN``. The file wins over the
    environment for settings; credentials from the file are registered in-process, never stored.
    """
    env = dict(os.environ if env is None else env)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = load_yaml_file(path).data
        except InputError as exc:
            raise ConfigError(exc.message, source=exc.source, line=exc.line, column=exc.column) from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError("a wei-gen config must be a YAML mapping (api_keys:, settings:)", source=str(path))
        data = loaded
    settings = _section(data, "settings", path)
    keys = _section(_section(data, "api_keys", path), "openai", path)
    unknown = sorted(
        set(settings) - _SETTING_KEYS - {"data_dir", "checkpointer", "api_tokens", "lab_roots", "validation_threshold"}
    )
    if unknown:
        raise ConfigError(f"unknown settings: {', '.join(unknown)}", source=str(path))
    context = Context(base_url=env.get("OPENAI_BASE_URL", ""), lab_dir=env.get("WEI_GEN_LAB", Context.lab_dir))
    updates: dict[str, Any] = {}
    for key, value in settings.items():
        if key in _MODEL_KEYS:
            updates[key] = _normalise_model(str(value))
        elif key == "validation_threshold":  # wei_gen v2's name for the feasibility threshold
            updates["feasibility_threshold"] = float(value)
        elif key in _SETTING_KEYS:
            updates[key] = _coerce(key, value, path)
    try:
        context = replace(context, **updates)
    except TypeError as exc:
        raise ConfigError(f"bad settings: {exc}", source=str(path)) from None
    if keys.get("key") or keys.get("org"):
        register_credentials(str(keys.get("key") or ""), str(keys.get("org") or ""))
    if not (keys.get("key") or _CREDENTIALS.openai_api_key or env.get("OPENAI_API_KEY") or context.base_url):
        # No key and no endpoint: every agent without an explicit model gets the offline planner (announced by
        # Context.planner_notice) instead of failing at its first model call.
        offline: dict[str, Any] = {key: OFFLINE_MODEL for key in _MODEL_KEYS if key not in settings}
        context = replace(context, **offline)
    tokens = settings.get("api_tokens") or []
    if env.get("WEI_GEN_API_TOKEN"):
        tokens = [*tokens, env["WEI_GEN_API_TOKEN"]]
    return AppConfig(
        context=context,
        data_dir=Path(str(settings.get("data_dir") or env.get("WEI_GEN_DATA_DIR") or default_data_dir())),
        checkpointer=str(settings.get("checkpointer") or env.get("WEI_GEN_CHECKPOINTER") or ""),
        api_tokens=tuple(str(t) for t in tokens),
        lab_roots=_lab_roots(settings.get("lab_roots"), env.get("WEI_GEN_LAB_ROOTS", ""), path),
    )


def _lab_roots(setting: Any, env_value: str, path: Path | None) -> tuple[Path, ...]:
    """``settings.lab_roots`` (a list of folders) plus ``$WEI_GEN_LAB_ROOTS`` (separated by ``os.pathsep``)."""
    if setting is None:
        setting = []
    if isinstance(setting, str) or not isinstance(setting, list):
        raise ConfigError("settings.lab_roots must be a list of folders", source=str(path))
    return tuple(Path(str(r)) for r in [*setting, *(r for r in env_value.split(os.pathsep) if r)])


def _section(data: dict[str, Any], key: str, path: Path | None) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"'{key}' must be a mapping", source=str(path))
    return value


def _coerce(key: str, value: Any, path: Path | None) -> Any:
    default = getattr(Context(), key)
    try:
        if isinstance(default, bool):
            return bool(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"setting '{key}' must be a {type(default).__name__}, not {value!r}", source=str(path)
        ) from None


def dump_example_config() -> str:
    """An example config file in wei_gen v2's shape (for ``wei-gen`` docs and tests)."""
    return yaml.safe_dump(
        {
            "api_keys": {"openai": {"key": "sk-...", "org": "org-..."}},
            "settings": {f"{a}_model": "gpt-4o" for a in ("framework", "workflow", "code", "validator", "config")},
        },
        sort_keys=False,
    )
