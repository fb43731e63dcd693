"""Pydantic models of the WEI 0.7 file formats: workflow, workcell and module about.

These mirror ``ad_sdl.wei`` 0.7.4's ``wei.types`` field by field (see ``wei-formats.md`` §1, §3, §6) without depending
on that package, which is heavy and prints to stdout on import. Like WEI, unknown keys are ignored by the models; the
validator looks at the raw YAML to report them.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

# ---------------------------------------------------------------------------------------------------------------------
# Workflow (wei.types.workflow_types)
# ---------------------------------------------------------------------------------------------------------------------


class Metadata(BaseModel):
    """Workflow or workcell metadata; ``info`` is the alias WEI files use for the description."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    author: str | None = None
    """Who wrote the workflow."""
    description: str | None = Field(default=None, validation_alias=AliasChoices("description", "info"))
    """What the workflow does (written ``info:`` in most real files)."""
    version: float | str = ""
    """Free-form version."""


class WorkflowParameter(BaseModel):
    """A declared workflow parameter (WEI 0.7.2+), referenced as ``$name`` or ``${name}`` in steps."""

    name: str
    """Parameter name."""
    default: Any = None
    """Default value; WEI treats a falsy default as no default."""


class Step(BaseModel):
    """One workflow step: an action of a workcell module with its args and files."""

    name: str
    """Human label."""
    module: str
    """Name of a module in the workcell file (not the module's about name)."""
    action: str
    """Action name from the module's about."""
    args: dict[str, Any] = Field(default_factory=dict)
    """Action arguments: literals, location names, ``$param`` or ``payload.x`` strings."""
    files: dict[str, str] = Field(default_factory=dict)
    """File parameters of the action: key = file-parameter name, value = local path."""
    checks: str | None = None
    """Never evaluated by WEI."""
    locations: dict[str, Any] = Field(default_factory=dict)
    """Filled by the engine; not meant to be written by hand."""
    requirements: dict[str, Any] = Field(default_factory=dict)
    """Unused by WEI."""
    dependencies: list[str] = Field(default_factory=list)
    """Unused by WEI."""
    priority: int | None = None
    """Unused by WEI."""
    comment: str | None = None
    """Free text."""
    data_labels: dict[str, str] | None = None
    """Renames result labels to datapoint labels; values unique per workflow."""


class Workflow(BaseModel):
    """A WEI 0.7 workflow file."""

    name: str
    """Workflow name (required since WEI 0.5)."""
    metadata: Metadata = Field(default_factory=Metadata)
    """Author, description (``info``), version."""
    parameters: list[WorkflowParameter] = Field(default_factory=list)
    """Declared parameters (WEI 0.7.2+)."""
    flowdef: list[Step]
    """Steps in execution order."""
    modules: list[str] = Field(default_factory=list)
    """Deprecated list of modules; not validated by WEI."""

    @field_validator("modules", mode="before")
    @classmethod
    def _module_names(cls, value: Any) -> Any:
        """Convert ``{name: x}`` items to ``"x"`` as WEI does."""
        if isinstance(value, list):
            return [item.get("name") if isinstance(item, dict) else item for item in value]
        return value

    def to_yaml(self) -> str:
        """Render as WEI YAML, leaving out empty optional fields so the file reads like a hand-written one."""
        from wei_gen.yamlio import dump_yaml

        return dump_yaml(workflow_to_dict(self))


def workflow_to_dict(workflow: Workflow) -> dict[str, Any]:
    """Return the workflow as plain data in WEI's key order, without empty optional fields."""
    meta = {k: v for k, v in workflow.metadata.model_dump().items() if v not in (None, "")}
    if "description" in meta:
        meta["info"] = meta.pop("description")
    out: dict[str, Any] = {"name": workflow.name}
    if meta:
        out["metadata"] = meta
    if workflow.parameters:
        out["parameters"] = [p.model_dump(exclude_none=True) for p in workflow.parameters]
    steps = []
    for step in workflow.flowdef:
        data: dict[str, Any] = {"name": step.name, "module": step.module, "action": step.action}
        for key in ("args", "files", "comment", "data_labels"):
            value = getattr(step, key)
            if value:
                data[key] = value
        steps.append(data)
    out["flowdef"] = steps
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Module about (wei.types.module_types)
# ---------------------------------------------------------------------------------------------------------------------


class ModuleActionArg(BaseModel):
    """An argument of a module action as reported by ``/about``."""

    name: str
    """Argument name."""
    type: str | list[str]
    """WEI's type string, e.g. ``Union[List[float]str]`` (sub-types concatenated without separators)."""
    default: Any = None
    """Default value (``None`` is indistinguishable from "no default" in JSON)."""
    required: bool = True
    """Whether WEI requires the arg; unreliable in abouts served by WEI 0.7.3+."""
    description: str = ""
    """Free text."""


class ModuleActionFile(BaseModel):
    """A file parameter of a module action."""

    name: str
    """File parameter name (the key in a step's ``files``)."""
    required: bool = True
    """Whether the file must be supplied."""
    description: str = ""
    """Free text."""


class ModuleActionResult(BaseModel):
    """A result an action returns (a value or a local file)."""

    label: str
    """Result label, renamable by a step's ``data_labels``."""
    description: str = ""
    """Free text."""
    type: str = ""
    """``value`` or ``local_file``."""


class ModuleAction(BaseModel):
    """An action of a module."""

    name: str
    """Action name."""
    args: list[ModuleActionArg] = Field(default_factory=list)
    """Arguments."""
    description: str | None = ""
    """Free text."""
    files: list[ModuleActionFile] = Field(default_factory=list)
    """File parameters."""
    results: list[ModuleActionResult] = Field(default_factory=list)
    """Results."""
    blocking: bool = True
    """Whether the action blocks the module."""

    def arg(self, name: str) -> ModuleActionArg | None:
        """Return the arg called ``name``, if any."""
        return next((a for a in self.args if a.name == name), None)


class ModuleAbout(BaseModel):
    """What a module's ``GET /about`` returns."""

    name: str
    """The module's own name (not necessarily the workcell's module name)."""
    model: str | None = None
    """Device model."""
    interface: str | None = None
    """Interface, ``wei_rest_node`` in practice."""
    version: str | None = None
    """Module version."""
    wei_version: str | None = None
    """WEI version the module was built with."""
    description: str | None = None
    """What the module is."""
    actions: list[ModuleAction] = Field(default_factory=list)
    """Actions it offers."""
    resource_pools: list[Any] = Field(
        default_factory=list, validation_alias=AliasChoices("resource_pools", "resources")
    )
    """Untyped in WEI 0.7."""
    admin_commands: list[str] = Field(default_factory=list)
    """Admin commands such as reset or lock."""
    additional_info: Any = None
    """Free-form."""

    def action(self, name: str) -> ModuleAction | None:
        """Return the action called ``name``, if any."""
        return next((a for a in self.actions if a.name == name), None)


# ---------------------------------------------------------------------------------------------------------------------
# Workcell (wei.types.workcell_types)
# ---------------------------------------------------------------------------------------------------------------------


class ModuleDefinition(BaseModel):
    """A module entry of a workcell file."""

    model_config = ConfigDict(populate_by_name=True)

    name: str
    """The name workflow steps use."""
    model: str | None = None
    """Device model."""
    interface: str = "wei_rest_interface"
    """How WEI talks to the module."""
    config: dict[str, Any] = Field(default_factory=dict)
    """Interface settings, e.g. ``rest_node_address``."""
    locations: list[str] = Field(default_factory=list)
    """Rarely used list of location names."""
    workcell_coordinates: Any = Field(default=None, validation_alias=AliasChoices("workcell_coordinates", "location"))
    """Pose in the workcell frame."""
    active: bool = True
    """Inactive modules are not loaded by WEI."""

    @property
    def rest_address(self) -> str | None:
        """The module's REST base URL, when it has one."""
        value = self.config.get("rest_node_address")
        return str(value) if value else None


class Workcell(BaseModel):
    """A WEI workcell file."""

    name: str
    """Workcell name."""
    metadata: Metadata = Field(default_factory=Metadata)
    """Free-form metadata."""
    config: dict[str, Any]
    """WorkcellConfig; extra keys allowed (may be ``{}``)."""
    modules: list[ModuleDefinition]
    """The modules."""
    locations: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """``{module name: {location name: module-specific coordinates}}``."""

    @field_validator("locations", mode="before")
    @classmethod
    def _none_tables(cls, value: Any) -> Any:
        """Treat an empty per-module table (``pf400:`` with nothing under it) as empty."""
        if isinstance(value, dict):
            return {k: (v if v is not None else {}) for k, v in value.items()}
        return {} if value is None else value

    def module(self, name: str) -> ModuleDefinition | None:
        """Return the module called exactly ``name``, if any."""
        return next((m for m in self.modules if m.name == name), None)
