"""Loading wei_gen v2's config shape and the environment; building chat models; secrets stay out of settings."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from wei_gen.context import ConfigError, Context, credentials, load_config, register_credentials
from wei_gen.models import ModelSetupError, load_chat_model

V2_CONFIG = """\
api_keys:
  openai:
    key: "sk-from-file"
    org: "org-from-file"
settings:
  framework_model: "gpt-4-turbo"
  code_model: "gpt-4o"
  validator_model: "openai:gpt-4o-mini"
  workflow_model: "gpt-4-turbo"
  validation_threshold: 0.6
  max_workflow_attempts: 5
"""


@pytest.fixture(autouse=True)
def _no_registered_credentials() -> None:
    register_credentials("", "")


def test_v2_config_shape(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(V2_CONFIG, encoding="utf-8")
    config = load_config(path, env={})
    ctx = config.context
    assert ctx.framework_model == "openai:gpt-4-turbo"  # bare v2 names become provider:model
    assert ctx.validator_model == "openai:gpt-4o-mini"
    assert ctx.config_model == Context().config_model  # absent in v2 configs: our default
    assert ctx.feasibility_threshold == 0.6
    assert ctx.max_workflow_attempts == 5
    assert credentials().openai_api_key == "sk-from-file"
    # The key is registered in-process, never part of the serialisable settings.
    assert "sk-from-file" not in repr(dataclasses.asdict(ctx)) + repr(config)


def test_environment(tmp_path: Path) -> None:
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "WEI_GEN_LAB": "/labs/x", "WEI_GEN_API_TOKEN": "t1"}
    config = load_config(None, env=env)
    assert config.context.base_url == "http://127.0.0.1:9/v1"
    assert config.context.lab_dir == "/labs/x"
    assert config.api_tokens == ("t1",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("settings: [1, 2", "invalid YAML"),
        ("- a\n- b\n", "must be a YAML mapping"),
        ("settings:\n  framework_modle: gpt-4o\n", "unknown settings: framework_modle"),
        ("settings:\n  max_plan_attempts: many\n", "must be a int"),
        ("api_keys: sk-123\n", "'api_keys' must be a mapping"),
    ],
)
def test_malformed_config_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(path, env={})


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml", env={})


def test_model_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ModelSetupError, match="provider:model"):
        load_chat_model("gpt-4o", Context())
    with pytest.raises(ModelSetupError, match="no OpenAI API key"):
        load_chat_model("openai:gpt-4o", Context())
    local = load_chat_model("openai:llama3", Context(base_url="http://127.0.0.1:1/v1", temperature=0.2))
    assert type(local).__name__ == "ChatOpenAI"
    assert local.temperature == 0.2  # type: ignore[attr-defined]
    assert local.max_retries == 0  # type: ignore[attr-defined]  # retries are the graph's job
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    assert load_chat_model("openai:gpt-4o", Context()).openai_api_key.get_secret_value() == "sk-env"  # type: ignore[attr-defined]


def test_model_for_unknown_agent() -> None:
    with pytest.raises(ValueError, match="unknown agent"):
        Context().model_for("planner")


def test_models_are_built_once_per_setting_key_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from wei_gen.models import unregister_models

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-one")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    register_credentials("", "")
    ctx = Context(base_url="http://127.0.0.1:9/v1")
    first = load_chat_model("openai:gpt-4o", ctx)
    assert load_chat_model("openai:gpt-4o", ctx) is first
    assert load_chat_model("openai:gpt-4o", dataclasses.replace(ctx, temperature=0.5)) is not first
    assert load_chat_model("openai:gpt-4o-mini", ctx) is not first
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-two")
    second = load_chat_model("openai:gpt-4o", ctx)
    assert second is not first, "a new key must build a new model"
    monkeypatch.setenv("OPENAI_PROXY", "http://127.0.0.1:3128")
    assert load_chat_model("openai:gpt-4o", ctx) is not second, "provider environment variables are part of the key"
    unregister_models()
    monkeypatch.delenv("OPENAI_PROXY")
    assert load_chat_model("openai:gpt-4o", ctx) is not second, "unregister_models() forgets the cache"


def test_lab_roots_from_settings_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("settings:\n  lab_roots: [/srv/labs]\n  lab_dir: /opt/wei/mylab\n", encoding="utf-8")
    app = load_config(config, env={"WEI_GEN_LAB_ROOTS": f"/data/a{os.pathsep}/data/b"})
    assert app.lab_roots == (Path("/srv/labs"), Path("/data/a"), Path("/data/b"))
    default = load_config(None, env={"WEI_GEN_LAB": "/opt/wei/mylab"})
    assert default.allowed_lab_roots() == (Path("/opt/wei"),), "by default: the folder holding the default lab"
    config.write_text("settings:\n  lab_roots: /srv/labs\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="lab_roots must be a list"):
        load_config(config, env={})


def test_retry_after_is_read_in_every_form_a_provider_sends() -> None:
    import email.utils
    import time as _time

    import httpx
    import openai

    from wei_gen.models import retry_after_seconds

    def limited(headers: dict[str, str]) -> openai.RateLimitError:
        request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
        return openai.RateLimitError("slow down", response=httpx.Response(429, headers=headers, request=request),
                                     body=None)  # fmt: skip

    assert retry_after_seconds(limited({"retry-after-ms": "1500", "retry-after": "9"})) == 1.5
    assert retry_after_seconds(limited({"retry-after": "20"})) == 20.0
    in_a_minute = email.utils.formatdate(_time.time() + 60, usegmt=True)
    assert 55 <= (retry_after_seconds(limited({"retry-after": in_a_minute})) or 0) <= 60
    assert retry_after_seconds(limited({"retry-after": "soon"})) is None
    assert retry_after_seconds(limited({})) is None
    assert retry_after_seconds(ValueError("no response")) is None
