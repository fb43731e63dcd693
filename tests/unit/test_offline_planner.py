"""The offline planner on the example lab: clauses, synonyms, value binding, unmapped clauses, order, transfers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from wei_gen.context import OFFLINE_MODEL, Context, load_config, register_credentials
from wei_gen.lab import lab_from_dir
from wei_gen.offline import OfflinePlan, plan_offline
from wei_gen.offline.code import experiment_tests
from wei_gen.offline.nodes import plan_to_workflow
from wei_gen.offline.planner import to_plan
from wei_gen.offline.text import quantities, split_clauses
from wei_gen.tools.flow import check_flow, steps_from_workflow
from wei_gen.tools.validator import validate_workflow
from wei_gen.wei_types import workflow_to_dict

LAB = lab_from_dir(Path(__file__).resolve().parents[2] / "examples" / "labs" / "rpl_like")


def actions(description: str, values: dict[str, object] | None = None) -> list[str]:
    return [f"{s.module}.{s.action}" for s in plan_offline(description, values or {}, LAB).steps]


def test_clauses_split_at_new_instructions_only() -> None:
    verbs = {"seal", "tak", "mix", "return", "peel"}
    clauses = split_clauses("Mix the cyan, magenta and yellow dyes, then seal it. Take a photo and peel it.", verbs)
    assert [c.text for c in clauses] == ["mix the cyan, magenta and yellow dyes", "seal it", "take a photo", "peel it"]


def test_quantities_with_units() -> None:
    found = {(q.kind, q.value, q.unit) for q in quantities("seal at 175 °C for 2.5 min, read at 450 nm, 4 s")}
    assert found == {("temperature", 175.0, "C"), ("time", 2.5, "min"), ("wavelength", 450.0, "nm"), ("time", 4.0, "s")}


@pytest.mark.parametrize(
    ("clause", "expected"),
    [
        ("run program 5 in the PCR machine", "biometra.run_protocol"),
        ("thermocycle it on the thermal cycler", "biometra.run_protocol"),
        ("read the OD600 on the plate reader", "hidex.run_assay"),
        ("remove the foil on the de-sealer", "peeler.peel"),
        ("heat-seal it", "sealer.seal"),
        ("snap a photograph", "camera.take_picture"),
        ("grab a new plate from the plate stack", "sciclops.get_plate"),
        ("mix the dyes on the prep OT-2", "ot2_prep.run_protocol"),
        ("set up the PCR reactions on the PCR OT-2", "ot2_pcr.run_protocol"),
    ],
)
def test_synonyms_map_to_the_lab_action(clause: str, expected: str) -> None:
    plan = plan_offline(clause, {"plate_type": 1, "assay_name": "Abs_600nm"}, LAB)
    assert [key for _, key, _ in plan.mapped] == [expected]


def test_robot_arm_move_binds_source_and_target() -> None:
    plan = plan_offline("Have the robot arm move the plate from the sealer to the peeler.", {}, LAB)
    assert [(s.module, s.action, s.args) for s in plan.steps] == [
        ("pf400", "transfer", {"source": "sealer.default", "target": "peeler.default"})
    ]


def test_values_bind_with_units_types_and_names() -> None:
    plan = plan_offline(
        "Grab a new plate from tower 2, seal it at 180 degrees for 2 min, run program 3 on the thermocycler.",
        {"plate_type": 1},
        LAB,
    )
    args = {f"{s.module}.{s.action}": s.args for s in plan.steps}
    assert args["sciclops.get_plate"] == {"pos": "tower2"}
    assert args["sealer.seal"] == {"temperature": 180, "time": 120.0}  # minutes → the about's seconds
    assert isinstance(args["sealer.seal"]["temperature"], int)  # the about says int
    assert args["biometra.run_protocol"] == {"program": 3, "plate_type": 1}


def test_unmapped_clause_is_reported_not_guessed() -> None:
    plan = plan_offline("Seal the plate at 175 C for 3 s, then sing it a lullaby.", {}, LAB)
    assert plan.unmapped == ["sing it a lullaby"]
    assert actions("Seal the plate at 175 C for 3 s, then sing it a lullaby.") == ["sealer.seal"]
    assert "sing it a lullaby" in plan.reason()


def test_missing_capability_makes_it_infeasible() -> None:
    plan = plan_offline("Take a new plate from tower 1 and spin it down in the centrifuge for 5 minutes.", {}, LAB)
    assert not plan.feasible
    assert plan.missing_capability == "centrifuge"
    nothing = plan_offline("Sing a lullaby.", {}, LAB)
    assert not nothing.feasible and "no action" in nothing.missing_capability


def test_order_is_the_scientists() -> None:
    got = actions("Photograph the plate on the camera station, then seal it at 175 C for 3 s, then peel it.")
    assert [a for a in got if a != "pf400.transfer"] == ["camera.take_picture", "sealer.seal", "peeler.peel"]
    reversed_ = actions("Peel the plate on the peeler, then photograph it.")
    assert reversed_.index("peeler.peel") < reversed_.index("camera.take_picture")


def test_transfers_and_doors_are_completed_and_the_flow_is_sat() -> None:
    description = (
        "Measure the absorbance of the plate on the exchange nest in the plate reader, then seal it at 175 C for 3 s."
    )
    plan = plan_offline(description, {"assay_name": "Abs_600nm"}, LAB)
    steps = [(s.module, s.action, s.args.get("source"), s.args.get("target")) for s in plan.steps]
    assert steps == [
        ("hidex", "open", None, None),
        ("pf400", "transfer", "sciclops.exchange", "hidex.drawer"),
        ("hidex", "close", None, None),
        ("hidex", "run_assay", None, None),
        ("hidex", "open", None, None),
        ("pf400", "transfer", "hidex.drawer", "sealer.default"),
        ("hidex", "close", None, None),
        ("sealer", "seal", None, None),
    ]
    workflow = plan_to_workflow(to_plan(plan, description), {"assay_name": "Abs_600nm"}, LAB)
    assert validate_workflow(workflow, LAB).ok
    assert check_flow(steps_from_workflow(workflow_to_dict(workflow)), LAB).verdict == "sat"
    assert [p.name for p in workflow.parameters] == ["assay_name"]  # the scientist's value is a parameter
    assert "hidex" in experiment_tests(workflow)


def test_load_config_without_key_or_endpoint_is_offline(tmp_path: Path) -> None:
    register_credentials("", "")
    ctx = load_config(None, env={}).context
    assert ctx.offline_agents() == ["framework", "workflow", "code", "validator", "config"]
    assert "offline planner" in ctx.planner_notice()
    config = tmp_path / "config.yaml"
    config.write_text("settings:\n  code_model: openai:gpt-4o\n", encoding="utf-8")
    partly = load_config(config, env={}).context
    assert partly.code_model == "openai:gpt-4o" and partly.framework_model == OFFLINE_MODEL
    assert "for framework" in partly.planner_notice()
    assert load_config(None, env={"OPENAI_API_KEY": "sk-x"}).context.offline_agents() == []
    assert load_config(None, env={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}).context.offline_agents() == []
    assert Context().offline_agents() == [] and Context().with_model("offline").offline_agents()


@pytest.mark.parametrize(
    ("clause", "tower"),
    [
        ("Fetch a plate from the fourth tower.", "tower4"),
        ("Fetch a plate from the 3rd plate stack.", "tower3"),
        ("Take a fresh plate out of hotel number 5.", "tower5"),
        ("Get an unused plate from stack 1.", "tower1"),
    ],
)
def test_ordinals_and_noun_synonyms_name_an_option(clause: str, tower: str) -> None:
    plan = plan_offline(clause, {}, LAB)
    assert [(s.module, s.action, s.args) for s in plan.steps] == [("sciclops", "get_plate", {"pos": tower})]


def test_a_number_before_a_time_unit_is_not_an_ordinal() -> None:
    plan = plan_offline("Take a new plate from the first tower, then seal it at 170 C for 1 second.", {}, LAB)
    args = {f"{s.module}.{s.action}": s.args for s in plan.steps}
    assert args["sciclops.get_plate"] == {"pos": "tower1"}
    assert args["sealer.seal"] == {"temperature": 170, "time": 1.0}


def test_lid_steps_take_required_args_from_the_modules_step() -> None:
    description = "Move the plate from the PCR OT-2 into the thermal cycler and run program 7 with plate type 3."
    plan = plan_offline(description, {}, LAB)
    lids = [s for s in plan.steps if s.action in ("open_lid", "close_lid")]
    assert [s.action for s in lids] == ["open_lid", "close_lid"]
    assert all(s.args == {"plate_type": 3} for s in lids)
    assert "biometra.open_lid plate_type = 3 (as in biometra.run_protocol)" in plan.notes
    workflow = plan_to_workflow(to_plan(plan, description), {}, LAB)
    assert validate_workflow(workflow, LAB).ok
    assert check_flow(steps_from_workflow(workflow_to_dict(workflow)), LAB).verdict == "sat"


def test_lid_steps_fall_back_to_the_values_and_say_so() -> None:
    # The lid is closed after the plate leaves, with no program run: only the values give the plate type.
    plan = plan_offline(
        "Move the plate from the thermocycler to the camera station and photograph it.", {"plate_type": 1}, LAB
    )
    lids = [s for s in plan.steps if s.module == "biometra"]
    assert [(s.action, s.args) for s in lids] == [("open_lid", {"plate_type": 1}), ("close_lid", {"plate_type": 1})]
    assert "biometra.open_lid plate_type = values['plate_type']" in plan.notes
    without = plan_offline("Move the plate from the thermocycler to the camera station.", {}, LAB)
    assert any(n.startswith("no value for biometra.open_lid plate_type") for n in without.notes)


@pytest.mark.parametrize(
    ("clause", "assay"),
    [
        ("Read the plate in the Hidex with assay Lum_All.", "Lum_All"),
        ("Read the plate on the reader using the GreenFluor assay.", "GreenFluor"),
        ("Read the plate in the plate reader with the assay called quickscan.", "quickscan"),
        ("Read the OD600 assay on the plate reader.", "Abs_600nm"),  # a cue of the action, not a name: the values'
    ],
)
def test_a_name_next_to_the_args_noun_binds_as_written(clause: str, assay: str) -> None:
    plan = plan_offline(clause, {"assay_name": "Abs_600nm"}, LAB)
    assert [(s.module, s.action, s.args) for s in plan.steps] == [("hidex", "run_assay", {"assay_name": assay})]


def test_prose_next_to_the_args_noun_is_not_a_name() -> None:
    plan = plan_offline("Run the assay on the plate reader.", {}, LAB)
    assert [(s.action, s.args) for s in plan.steps] == [("run_assay", {})]
    assert any("no value for hidex.run_assay assay_name" in n for n in plan.notes)


def test_shaking_and_incubation_are_separate_capabilities(tmp_path: Path) -> None:
    shaking = plan_offline("Agitate the plate on the orbital shaker for 5 minutes.", {}, LAB)
    assert not shaking.feasible and shaking.missing_capability == "plate shaker"
    warming = plan_offline("Incubate the plate at 30 °C overnight.", {}, LAB)
    assert not warming.feasible and warming.missing_capability == "incubator"
    # A lab with a plate shaker lacks only the incubator for an incubation with shaking.
    lab_dir = tmp_path / "lab"
    shutil.copytree(Path(__file__).resolve().parents[2] / "examples" / "labs" / "rpl_like", lab_dir)
    workcell = lab_dir / "workcell.yaml"
    text = workcell.read_text(encoding="utf-8").replace(
        "modules:\n",
        "modules:\n  - name: bioshake\n    model: Q.Instruments BioShake plate shaker\n    interface: wei_rest_node\n",
        1,
    )
    workcell.write_text(text, encoding="utf-8")
    with_shaker = lab_from_dir(lab_dir)
    assert plan_offline("Shake the plate for 5 minutes.", {}, with_shaker).missing == []
    both = plan_offline("Incubate the plate at 37 °C with shaking.", {}, with_shaker)
    assert [capability for capability, _ in both.missing] == ["incubator"]


@pytest.mark.parametrize(("robot", "deck"), [("prep OT-2", "ot2_prep.deck2"), ("PCR OT-2", "ot2_pcr.deck1")])
def test_an_ambiguous_place_is_the_acting_modules(robot: str, deck: str) -> None:
    # "its deck" fits both OT-2 decks equally; the clause acts on one OT-2, so the plate is on that one's deck.
    plan = plan_offline(
        f"Dilute the samples in the plate already on its deck using the {robot}, then photograph it.", {}, LAB
    )
    moves = [(s.args["source"], s.args["target"]) for s in plan.steps if s.action == "transfer"]
    assert moves == [(deck, "camera.plate_station")]


def _check_sat(plan: OfflinePlan, description: str, values: dict[str, object]) -> None:
    workflow = plan_to_workflow(to_plan(plan, description), values, LAB)
    assert validate_workflow(workflow, LAB).ok
    assert check_flow(steps_from_workflow(workflow_to_dict(workflow)), LAB).verdict == "sat"


@pytest.mark.parametrize(
    ("description", "values", "expected", "args"),
    [
        (
            "Grab a new plate from tower 2, then bring it over to the camera station to snap an image.",
            {},
            ["sciclops.get_plate", "pf400.transfer", "camera.take_picture"],
            {},
        ),
        (
            "Shuttle the plate from the sealer into the Hidex to measure absorbance with the Abs_450nm assay.",
            {},
            ["hidex.open", "pf400.transfer", "hidex.close", "hidex.run_assay"],
            {"hidex.run_assay": {"assay_name": "Abs_450nm"}},
        ),
        (
            "Transfer the plate from the sealer into the thermal cycler to run program 6 with plate type 2.",
            {},
            ["biometra.open_lid", "pf400.transfer", "biometra.close_lid", "biometra.run_protocol"],
            {"biometra.run_protocol": {"program": 6, "plate_type": 2}, "biometra.open_lid": {"plate_type": 2}},
        ),
        (
            "Relocate the plate from the camera station onto the peeler to take the foil off.",
            {},
            ["pf400.transfer", "peeler.peel"],
            {"pf400.transfer": {"source": "camera.plate_station", "target": "peeler.default"}},
        ),
    ],
)
def test_a_move_with_a_purpose_at_its_destination_does_both(
    description: str, values: dict[str, object], expected: list[str], args: dict[str, dict[str, object]]
) -> None:
    plan = plan_offline(description, values, LAB)
    got = [f"{s.module}.{s.action}" for s in plan.steps]
    assert got == expected  # one transfer: the purpose step finds the plate already there
    for key, wanted in args.items():
        step = next(s for s in plan.steps if f"{s.module}.{s.action}" == key)
        assert step.args.items() >= wanted.items()
    assert not plan.unmapped
    _check_sat(plan, description, values)


def test_a_move_without_a_purpose_is_only_a_move() -> None:
    # "a new plate" is get_plate's cue, but the crane is not where the plate goes: no second action.
    plan = plan_offline("Relocate the new plate from the sealer to the camera station.", {}, LAB)
    assert [f"{s.module}.{s.action}" for s in plan.steps] == ["pf400.transfer"]


def test_a_leading_phrase_sets_the_scene_for_the_next_instruction() -> None:
    description = "At the PCR OT-2, combine primers and template in the plate, then photograph it."
    plan = plan_offline(description, {}, LAB)
    assert [c.text for c in plan.clauses] == [
        "at the pcr ot2, combine primers and template in the plate",
        "photograph it",
    ]
    assert [key for _, key, _ in plan.mapped] == ["ot2_pcr.run_protocol", "camera.take_picture"]
    assert not plan.unmapped


def test_a_leading_phrase_that_asks_for_something_stays_its_own_clause() -> None:
    plan = plan_offline("With a fresh plate from tower 5, heat-seal it at 165 °C for 2 s.", {}, LAB)
    assert [key for _, key, _ in plan.mapped] == ["sciclops.get_plate", "sealer.seal"]
    assert [s.args for s in plan.steps if s.action in ("get_plate", "seal")] == [
        {"pos": "tower5"},
        {"temperature": 165, "time": 2.0},
    ]


def test_values_in_brackets_stay_with_their_clause() -> None:
    # Unbracketed, ", program 8" would start a clause ("program" is a verb cue) and "; 6 s" a sentence.
    description = "Cycle it on the thermocycler (plate type 3, program 8), then seal it (160 °C; 6 s)."
    plan = plan_offline(description, {}, LAB)
    assert len(plan.clauses) == 2
    args = {f"{s.module}.{s.action}": s.args for s in plan.steps if s.origin == "clause"}
    assert args["biometra.run_protocol"] == {"program": 8, "plate_type": 3}
    assert args["sealer.seal"] == {"temperature": 160, "time": 6.0}


@pytest.mark.parametrize(
    ("description", "capability"),
    [
        ("Lyophilise the eluate overnight.", "lyophilizer (freeze dryer)"),  # the vocabulary's capability
        ("Dry the samples down in the vacuum evaporator.", "evaporator"),  # not in the vocabulary: the noun
        ("Spin the tubes slowly on the rotator.", "rotator"),  # not the centrifuge that "spin" would suggest
        ("Quantify the fluorescence in the flow cytometer.", "cytometer"),  # not the plate reader "fluorescence" cues
        ("Store the plate in the fridge.", "fridge (4 °C cold storage)"),  # the vocabulary's capability now
        ("Tare the tube on the scale.", "balance (scale)"),  # "scale" named as an instrument is the balance
        ("Weigh out 5 mg of the powder.", "balance (scale)"),  # the vocabulary's phrase, no instrument named
        ("Equilibrate the samples in the anaerobic chamber.", "chamber"),  # maps to no action: the noun is reported
        ("Check the pH of the buffer with a pH meter.", "meter"),
    ],
)
def test_an_instrument_the_lab_lacks_is_the_missing_capability(description: str, capability: str) -> None:
    plan = plan_offline(description, {}, LAB)
    assert not plan.feasible
    assert plan.missing_capability == capability


def test_an_instrument_the_lab_has_is_not_missing() -> None:
    plan = plan_offline("Quantify the fluorescence on the microplate reader with the Fluo_485 assay.", {}, LAB)
    assert plan.feasible and [key for _, key, _ in plan.mapped] == ["hidex.run_assay"]


def test_a_lab_with_a_freeze_dryer_needs_no_freezer_for_freeze_drying(tmp_path: Path) -> None:
    # "freeze" is the freezer's phrase, but inside "freeze dry" it is the freeze dryer's word.
    lab_dir = tmp_path / "lab"
    shutil.copytree(Path(__file__).resolve().parents[2] / "examples" / "labs" / "rpl_like", lab_dir)
    workcell = lab_dir / "workcell.yaml"
    text = workcell.read_text(encoding="utf-8").replace(
        "modules:\n",
        "modules:\n  - name: freezone\n    model: Labconco FreeZone lyophilizer\n    interface: wei_rest_node\n",
        1,
    )
    workcell.write_text(text, encoding="utf-8")
    assert plan_offline("Freeze-dry the eluate for 12 hours.", {}, lab_from_dir(lab_dir)).missing == []
    assert (
        plan_offline("Freeze-dry the eluate for 12 hours.", {}, LAB).missing_capability == "lyophilizer (freeze dryer)"
    )


@pytest.mark.parametrize(
    "description",
    [
        "Mix the dyes with the balance of the water on the PCR OT-2.",  # "balance of": an amount, not an instrument
        "Pipette the dyes and primers at a small scale.",  # a size, not a weighing scale
    ],
)
def test_everyday_senses_of_instrument_words_are_not_missing(description: str) -> None:
    plan = plan_offline(description, {}, LAB)
    assert plan.feasible and plan.missing == []


@pytest.mark.parametrize(
    ("description", "expected", "transfer"),
    [
        (
            "Measure absorbance using the Abs_450 assay on the plate coming from the sealer, then leave it in the "
            "plate reader.",
            ["hidex.open", "pf400.transfer", "hidex.close", "hidex.run_assay"],
            {"source": "sealer.default", "target": "hidex.drawer"},
        ),
        (
            "Photograph the plate from the prep OT-2 and leave it there.",
            ["pf400.transfer", "camera.take_picture"],
            {"source": "ot2_prep.deck2", "target": "camera.plate_station"},
        ),
    ],
)
def test_leaving_the_plate_where_it_is_adds_no_move(
    description: str, expected: list[str], transfer: dict[str, str]
) -> None:
    # The implied transfer goes from the place named after "from" to the acting instrument's nest; "leave it"
    # there afterwards is no second move (a move with no target would fail the plan check).
    plan = plan_offline(description, {}, LAB)
    assert [f"{s.module}.{s.action}" for s in plan.steps] == expected
    assert next(s for s in plan.steps if s.action == "transfer").args == transfer
    assert not plan.unmapped and any("stays" in note for note in plan.notes)
    _check_sat(plan, description, {})


def test_leaving_the_plate_somewhere_else_still_moves_it() -> None:
    plan = plan_offline("Photograph the plate from the sealer, then leave it in the plate reader.", {}, LAB)
    moves = [s.args for s in plan.steps if s.action == "transfer"]
    assert moves == [
        {"source": "sealer.default", "target": "camera.plate_station"},
        {"source": "camera.plate_station", "target": "hidex.drawer"},
    ]


def test_arrows_separate_steps_and_values_after_a_comma_stay() -> None:
    description = (
        "Fresh plate from stack 4 → heat seal 168 °C, 4 s => PCR machine program 2, plate type 3 -> photo -> bin"
    )
    plan = plan_offline(description, {}, LAB)
    assert [c.text for c in plan.clauses] == [
        "fresh plate from stack 4",
        "heat seal 168 c , 4 s",
        "pcr machine program 2, plate type 3",
        "photo",
        "bin",
    ]
    args = {f"{s.module}.{s.action}": s.args for s in plan.steps if s.origin == "clause"}
    assert args["sciclops.get_plate"] == {"pos": "tower4"}
    assert args["sealer.seal"] == {"temperature": 168, "time": 4.0}
    assert args["biometra.run_protocol"] == {"program": 2, "plate_type": 3}
    assert "camera.take_picture" in args
    assert plan.steps[-1].module == "pf400" and plan.steps[-1].args["target"] == "wc.trash"


def test_a_comma_before_a_new_instruction_still_splits() -> None:
    plan = plan_offline("Seal the plate at 165 °C for 3 s, take 2 photos.", {}, LAB)
    assert [c.text for c in plan.clauses] == ["seal the plate at 165 c for 3 s", "take 2 photos"]


@pytest.mark.parametrize(
    ("description", "assay"),
    [
        ("Measure the fluorescence of the plate on the reader, quantified using GreenFluo_520.", "GreenFluo_520"),
        ("Read the plate with Lum2Glow.", "Lum2Glow"),
    ],
)
def test_a_name_after_with_or_using_binds_the_actions_only_name_arg(description: str, assay: str) -> None:
    plan = plan_offline(description, {}, LAB)
    assert [c.text for c in plan.clauses] == [plan.clauses[0].text]  # the participle stays with its clause
    reads = [s for s in plan.steps if (s.module, s.action) == ("hidex", "run_assay")]
    assert [s.args for s in reads] == [{"assay_name": assay}]


@pytest.mark.parametrize("description", ["Read the plate with care.", "Read the plate with OD600 on the reader."])
def test_ordinary_words_after_with_are_no_names(description: str) -> None:
    plan = plan_offline(description, {}, LAB)
    assert [s.args for s in plan.steps if s.action == "run_assay"] == [{}]


def test_a_process_on_a_new_plate_gets_the_plate_first() -> None:
    plan = plan_offline("We want the fluorescence of a fresh plate taken from stack 1 using Fluo_485.", {}, LAB)
    keys = [f"{s.module}.{s.action}" for s in plan.steps]
    assert keys[0] == "sciclops.get_plate" and keys[-1] == "hidex.run_assay"
    assert plan.steps[0].args == {"pos": "tower1"} and plan.steps[-1].args == {"assay_name": "Fluo_485"}


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("The foil-sealed plate sitting in the sealer should have its seal removed.", "peeler.peel"),
        ("The plate waiting on the sealer nest needs the foil removed.", "peeler.peel"),
        ("Image the peeled plate on the camera station.", "camera.take_picture"),
    ],
)
def test_a_participle_that_describes_the_plate_is_no_cue(description: str, expected: str) -> None:
    plan = plan_offline(description, {}, LAB)
    assert [key for _, key, _ in plan.mapped] == [expected]


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("Carry the peeled plate from the peeler over to the camera station.", "pf400.transfer"),
        ("Snap an image named plate_after.jpg of it.", "camera.take_picture"),
    ],
)
def test_a_verb_before_a_participle_is_still_the_cue(description: str, expected: str) -> None:
    plan = plan_offline(description, {}, LAB)
    assert [key for _, key, _ in plan.mapped][:1] == [expected]


def test_seal_still_maps_when_sealing_is_asked() -> None:
    plan = plan_offline("Have the plate sealed at 170 °C for 2 s.", {}, LAB)
    assert [key for _, key, _ in plan.mapped] == ["sealer.seal"]


@pytest.mark.parametrize(
    ("description", "capability"),
    [
        ("Park the reaction plate at 8 °C over the weekend.", "fridge (4 °C cold storage)"),
        ("Keep the lysates refrigerated.", "fridge (4 °C cold storage)"),
        ("Store the aliquots at -70 °C.", "liquid nitrogen / -80 °C freezer"),
    ],
)
def test_cold_storage_is_a_missing_capability(description: str, capability: str) -> None:
    plan = plan_offline(description, {}, LAB)
    assert not plan.feasible and plan.missing_capability == capability


def test_a_cold_hold_in_a_pcr_program_needs_no_fridge() -> None:
    plan = plan_offline("Cycle the plate with program 4, plate type 1, ending with a hold at 4 °C.", {}, LAB)
    assert plan.feasible and [key for _, key, _ in plan.mapped] == ["biometra.run_protocol"]
