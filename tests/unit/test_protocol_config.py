"""OT-2 protocol configs: the checker on the real labware facts, each fault kind, the offline builder, the CLI."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tests import corpus
from wei_gen.cli import app
from wei_gen.tools.protocol import (
    _wells,
    analyze_protocol,
    build_protocol,
    deck_setup,
    deck_slot_from_lab,
    facts,
    is_protocol_config,
    parse_values,
    validate_protocol_file,
    validate_protocol_text,
    value_numbers,
)
from wei_gen.tools.validator import CODES

LAB = Path(__file__).resolve().parents[2] / "examples" / "labs" / "rpl_like"
PROTOCOLS = sorted((LAB / "examples" / "protocols").glob("*.yaml"))
VALUES = {"master_mix_ul": 15, "template_ul": 5}


def good() -> dict[str, Any]:
    """A correct PCR setup: 15 µL master mix + 5 µL template into A1 of a 100 µL PCR plate."""
    return {
        "equipment": [
            {"name": "nest_96_wellplate_100ul_pcr_full_skirt", "location": "1"},
            {"name": "opentrons_24_tuberack_nest_1.5ml_snapcap", "location": "2", "alias": "tubes"},
            {"name": "opentrons_96_tiprack_20ul", "location": "8"},
            {"name": "p20_single_gen2", "mount": "left"},
        ],
        "commands": [
            {"name": "master mix", "source": "tubes:A1", "destination": "1:A1", "volume": 15},
            {
                "name": "template",
                "source": "2:A2",
                "destination": "1:A1",
                "volume": 5,
                "mix_cycles": 3,
                "mix_volume": 10,
            },
        ],  # fmt: skip
        "metadata": {"protocolName": "PCR mix", "author": "test", "description": "", "apiLevel": "2.12"},
    }


def errors(data: Any, values: Any = None) -> list[tuple[str, str]]:
    report = analyze_protocol(data, "p.yaml", values).report
    return [(d.code, d.message) for d in report.errors]


def test_every_code_used_is_listed() -> None:
    source = (Path(__file__).resolve().parents[2] / "src" / "wei_gen" / "tools" / "protocol.py").read_text()
    import re

    used = set(re.findall(r'"(config-[a-z-]+)"', source))
    assert used and used <= set(CODES)


def test_the_good_config_and_the_example_lab_protocols_pass() -> None:
    assert analyze_protocol(good(), "p.yaml", VALUES).report.diagnostics == []
    assert len(PROTOCOLS) == 2
    for path in PROTOCOLS:
        report = validate_protocol_file(path)
        assert report.diagnostics == [], (path, report.diagnostics)


def test_facts_are_consistent() -> None:
    f = facts()
    assert len(f.labware["corning_96_wellplate_360ul_flat"].wells) == 96
    assert f.labware["corning_96_wellplate_360ul_flat"].wells["H12"] == 360
    assert list(f.labware["nest_12_reservoir_15ml"].wells)[:2] == ["A1", "A2"]
    mixed = f.labware["opentrons_10_tuberack_nest_4x50ml_6x15ml_conical"].wells
    assert (len(mixed), mixed["A1"], mixed["A3"]) == (10, 15000, 50000)
    for p in f.pipettes.values():
        assert 0 < p.min_ul < p.max_ul
    assert "12" not in f.slots and len(f.slots) == 11


# -- each fault kind ---------------------------------------------------------------------------------------------------


def test_unknown_labware_is_caught_with_a_suggestion() -> None:
    data = good()
    data["equipment"][0]["name"] = "nest_96_wellplate_100ul_pcr_full_skrt"
    report = analyze_protocol(data, "p.yaml").report
    bad = [d for d in report.errors if d.code == "config-unknown-labware"]
    assert len(bad) == 1 and "nest_96_wellplate_100ul_pcr_full_skrt" in bad[0].message
    assert bad[0].hint == "did you mean 'nest_96_wellplate_100ul_pcr_full_skirt'?"


def test_bad_well_is_caught() -> None:
    data = good()
    data["commands"][0]["destination"] = "1:I1"  # a 96-well plate has rows A-H
    assert errors(data) == [
        ("config-bad-well", "command 1 'master mix': destination well 'I1' does not exist in "
         "'nest_96_wellplate_100ul_pcr_full_skirt' (slot 1)"),
    ]  # fmt: skip
    data = good()
    data["commands"][1]["source"] = "8:A1"
    assert [c for c, _ in errors(data)] == ["config-bad-well"]
    assert "tip rack" in errors(data)[0][1]


def test_over_capacity_is_caught_the_predecessors_676_ul_in_a_360_ul_well() -> None:
    data = {
        "equipment": [
            {"name": "corning_96_wellplate_360ul_flat", "location": "1"},
            {"name": "nest_12_reservoir_15ml", "location": "2"},
            {"name": "opentrons_96_tiprack_1000ul", "location": "9"},
            {"name": "p1000_single_gen2", "mount": "right"},
        ],
        "commands": [{"name": "water", "source": "2:A1", "destination": "1:A1", "volume": 676}],
        "metadata": {"protocolName": "x"},
    }
    assert errors(data) == [
        (
            "config-over-capacity",
            "well 1:A1 (corning_96_wellplate_360ul_flat) would hold 676 µL; its capacity is 360 µL",
        )
    ]
    # Cumulative: two transfers of 200 µL into one 360 µL well overflow it, although each fits.
    data["commands"] = [{"name": "water", "source": "2:A1", "destination": ["1:B1", "1:B1"], "volume": 200}]
    data["equipment"][2:] = [{"name": "opentrons_96_tiprack_300ul", "location": "9"},
                             {"name": "p300_single_gen2", "mount": "right"}]  # fmt: skip
    assert [m for _, m in errors(data)] == [
        "well 1:B1 (corning_96_wellplate_360ul_flat) would hold 400 µL; its capacity is 360 µL"
    ]


def test_a_source_that_cannot_hold_what_is_drawn_from_it_is_caught() -> None:
    data = good()
    data["commands"][0]["destination"] = [f"1:{w}" for w in ("A1", "B1", "C1", "D1", "E1", "F1", "G1", "H1")] * 13
    found = errors(data)
    assert ("config-over-capacity", "source 2:A1 (opentrons_24_tuberack_nest_1.5ml_snapcap) must hold 1560 µL for "
            "the transfers drawn from it, but a well holds at most 1500 µL") in found  # fmt: skip


def test_duplicate_slot_is_caught() -> None:
    data = good()
    data["equipment"][2]["location"] = "2"
    assert errors(data)[0] == (
        "config-duplicate-slot",
        "slot 2 holds both 'opentrons_24_tuberack_nest_1.5ml_snapcap' and 'opentrons_96_tiprack_20ul'",
    )


@pytest.mark.parametrize(("slot", "why"), [("12", "holds the fixed trash"), ("0", "is not an OT-2 deck slot")])
def test_invalid_slots_are_caught(slot: str, why: str) -> None:
    data = good()
    data["equipment"][0]["location"] = slot
    assert (f"'nest_96_wellplate_100ul_pcr_full_skirt' on slot '{slot}', which {why}") in [m for _, m in errors(data)]


def test_pipette_out_of_range_is_caught_above_and_below() -> None:
    data = good()
    data["commands"][0]["volume"] = 25  # more than the p20 takes
    assert ("config-pipette-range", "command 1 'master mix': 25 µL is more than any mounted pipette takes (largest: "
            "p20_single_gen2, 20 µL)") in errors(data)  # fmt: skip
    data = good()
    data["equipment"][3] = {"name": "p300_single_gen2", "mount": "left"}
    data["equipment"][2] = {"name": "opentrons_96_tiprack_300ul", "location": "8"}
    found = errors(data)
    assert ("config-pipette-range", "command 2 'template': 5 µL is below the range of p300_single_gen2 (20–300 µL), "
            "the pipette the driver picks for it") in found  # fmt: skip


def test_a_volume_not_in_the_users_values_is_caught() -> None:
    data = good()
    data["commands"].append({"name": "ethanol", "source": "2:A3", "destination": "1:B1", "volume": 12})
    assert errors(data, VALUES) == [
        ("config-untraced-volume", "command 3 'ethanol': 12 µL is not one of the user's values (5, 15)")
    ]
    assert errors(data, None) == []  # without values (e.g. `wei-gen validate` without --values) it is not checked
    report = analyze_protocol(data, "p.yaml", parse_values("mix the dyes")).report
    assert report.ok and report.codes("warning") == ["config-untraced-volume"]


def test_values_in_text_and_millilitres_count() -> None:
    assert value_numbers(parse_values("15 uL master mix, 5µL template; 1.5 mL water")) >= {15.0, 5.0, 1.5}

    def untraced(volume: float, values: Any) -> bool:
        data = good()
        data["commands"][0]["volume"] = volume
        return "config-untraced-volume" in analyze_protocol(data, "p.yaml", values).report.codes()

    assert not untraced(15, "add 15 uL master mix and 5 uL template")
    assert untraced(12, "add 15 uL master mix and 5 uL template")
    assert not untraced(1500, {"water_ml": 1.5, "template_ul": 5})  # mL given, µL in the config
    assert untraced(1.5, {"water_ml": 2, "template_ul": 5})


def test_other_faults_have_their_own_codes() -> None:
    data = good()
    data["equipment"].pop(2)  # no 20 µL tip rack
    assert [c for c, _ in errors(data)] == ["config-no-tips"]
    data = good()
    data["commands"][0]["destination"] = ["1:A1", "1:B1"]
    data["commands"][0]["volume"] = [15, 15, 15]
    assert [c for c, _ in errors(data)] == ["config-length-mismatch"]
    data = good()
    data["commands"][0]["source"] = "rack:A1"
    assert [c for c, _ in errors(data)] == ["config-unknown-location"]
    data = good()
    data["equipment"].append({"name": "p20_single_gen2", "mount": "left"})
    assert [c for c, _ in errors(data)] == ["config-duplicate-mount"]
    data = good()
    data["equipment"][3]["name"] = "p30_single_gen2"
    assert "config-unknown-pipette" in [c for c, _ in errors(data)]
    data = good()
    data["commands"][0]["volume"] = -3
    assert [c for c, _ in errors(data)] == ["config-volume"]
    data = good()
    data["commands"][0]["volumes"] = 3
    assert [c for c, _ in errors(data)] == ["config-schema"]
    assert [c for c, _ in errors([1, 2])] == ["config-schema"]


def test_tips_are_counted_as_the_driver_uses_them() -> None:
    data = good()
    wells = [f"{r}{c}" for c in range(1, 13) for r in "ABCDEFGH"]
    data["commands"] = [{"name": "mm", "source": "2:A1", "destination": [f"1:{w}" for w in wells], "volume": 5},
                        {"name": "t", "source": "2:A2", "destination": "1:A1", "volume": 5}]  # fmt: skip
    assert [c for c, _ in errors(data)] == ["config-tips-exhausted"]  # 97 tips, one rack of 96
    data["commands"][0]["drop_tip"] = False  # one tip for the whole first command
    assert errors(data) == []


def test_payload_and_resource_file_values_are_not_guessed() -> None:
    data = good()
    data["resources"] = [{"location": "/data/plate.xlsx", "name": "layout"}]
    data["commands"][0] |= {"destination": "1:Destination", "volume": "Primer Volume"}
    data["commands"][1]["source"] = "payload.source_well"
    report = analyze_protocol(data, "p.yaml", VALUES).report
    assert report.ok and set(report.codes("info")) == {"config-runtime-value"}


def test_yaml_errors_and_kind_detection() -> None:
    report = validate_protocol_text("equipment: [\n", "p.yaml")
    assert report.codes() == ["yaml-parse"] and report.diagnostics[0].line is not None
    assert is_protocol_config(good())
    assert not is_protocol_config({"name": "w", "flowdef": [], "commands": []})


def test_deck_setup_names_slots_mounts_and_liquids() -> None:
    text = deck_setup("ot2_pcr", "configs/p.yaml", analyze_protocol(good(), "p.yaml"))
    assert "- slot 2: `opentrons_24_tuberack_nest_1.5ml_snapcap` (alias `tubes`) — load A1: at least 15 µL of " \
           "master mix; A2: at least 5 µL of template" in text  # fmt: skip
    assert "- left mount: `p20_single_gen2`" in text and "uses 2 tip(s)" in text


# -- offline builder ---------------------------------------------------------------------------------------------------


def test_offline_builder_uses_the_values_and_reports_every_default() -> None:
    values = parse_values("master_mix_ul: 15\ntemplate_ul: 5\nwells: A1-D1\nplate: biorad_96_wellplate_200ul_pcr\n")
    built = build_protocol("ot2_pcr", "PCR setup", values, lab_slot="1")
    analysis = analyze_protocol(built.data, "p.yaml", values)
    assert analysis.report.ok, analysis.report.diagnostics
    assert [c["volume"] for c in built.data["commands"]] == [15.0, 5.0]
    assert built.data["commands"][0]["destination"] == ["1:A1", "1:B1", "1:C1", "1:D1"]
    assert {"name": "p20_single_gen2", "mount": "left"} in built.data["equipment"]
    defaults = [d.message for d in built.diagnostics]
    assert all(d.code == "config-default-used" for d in built.diagnostics)
    assert any("the source labware is not in the values; used nest_12_reservoir_15ml" in m for m in defaults)
    assert not any("the plate is not" in m for m in defaults)  # given by the user


def test_offline_builder_per_module_sections_and_two_pipettes() -> None:
    values = {"ot2_prep": {"transfers": [{"liquid": "dye", "volume": 150}, {"liquid": "buffer", "volume": 10}]},
              "ot2_pcr": {"mm_ul": 20}}  # fmt: skip
    prep = build_protocol("ot2_prep", "prep", values, lab_slot="2", multi=True)
    names = [e["name"] for e in prep.data["equipment"]]
    assert "p20_single_gen2" in names and "p300_single_gen2" in names
    assert analyze_protocol(prep.data, "p.yaml", values).report.ok
    pcr = build_protocol("ot2_pcr", "pcr", values, lab_slot="1", multi=True)
    assert [c["volume"] for c in pcr.data["commands"]] == [20.0]


def test_offline_builder_reads_volumes_from_prose_and_amount_strings() -> None:
    text = "Pipette 15 uL of master mix, 5 µL template and 0.1 mL water into A1; seal at 175 C."
    built = build_protocol("ot2_pcr", "PCR", parse_values(text), lab_slot="1")
    assert [(c["name"], c["volume"]) for c in built.data["commands"]] == [
        ("Add master mix", 15.0), ("Add template", 5.0), ("Add water", 100.0)
    ]  # fmt: skip
    assert analyze_protocol(built.data, "p.yaml", parse_values(text)).report.ok
    built = build_protocol("ot2_pcr", "PCR", {"master_mix": "15 uL", "buffer": "0.05 mL"}, lab_slot="1")
    assert [(c["name"], c["volume"]) for c in built.data["commands"]] == [
        ("Add master mix", 15.0),
        ("Add buffer", 50.0),
    ]


def test_offline_builder_without_volumes_says_so() -> None:
    built = build_protocol("ot2_pcr", "PCR", parse_values("make a nice PCR"), lab_slot="1")
    assert [d.code for d in built.diagnostics if d.severity == "error"] == ["config-no-commands"]
    assert "name no volumes" in next(d.message for d in built.diagnostics if d.severity == "error")


def test_well_ranges_and_deck_slots() -> None:
    assert _wells("A1-A3") == ["A1", "A2", "A3"]
    assert _wells("A1-C1") == ["A1", "B1", "C1"]
    assert _wells("A1:B2") == ["A1", "B1", "A2", "B2"]
    assert _wells(["a1", "B2"]) == ["A1", "B2"]
    assert deck_slot_from_lab("ot2_pcr", ["ot2_pcr.deck1", "ot2_prep.deck2"]) == "1"
    assert deck_slot_from_lab("ot2_prep", ["ot2_pcr.deck1", "ot2_prep.deck2"]) == "2"
    assert deck_slot_from_lab("ot2_x", ["ot2_x.deck13"]) == ""


# -- real files --------------------------------------------------------------------------------------------------------


def _corpus_protocols() -> list[Path]:
    if not corpus.available():
        return []
    found = []
    for path in sorted(corpus.CORPUS.rglob("*.y*ml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError):
            continue
        if is_protocol_config(data):
            found.append(path)
    return found


def test_real_corpus_protocol_configs_are_accepted() -> None:
    if not corpus.available():
        pytest.skip(corpus.SKIP_REASON)
    paths = _corpus_protocols()
    if not paths:
        pytest.skip(f"the corpus at {corpus.CORPUS} holds no OT-2 protocol configs (equipment/commands files)")
    for path in paths:
        report = validate_protocol_file(path)
        assert report.ok, (path, report.errors)


# -- wei-gen validate --------------------------------------------------------------------------------------------------


def test_cli_validates_protocol_configs_without_a_lab(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = tmp_path / "ok.yaml"
    ok.write_text(yaml.safe_dump(good()))
    result = runner.invoke(app, ["validate", str(ok)])
    assert result.exit_code == 0, result.output
    assert "OT-2 protocol config" in result.output and "OK" in result.output
    bad_data = copy.deepcopy(good())
    bad_data["commands"][0]["volume"] = 150
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(bad_data))
    result = runner.invoke(app, ["validate", str(bad), "--format", "json"])
    assert result.exit_code == 1
    payload = json.loads(result.output)
    assert payload["files"][0]["kind"] == "ot2-protocol"
    assert "config-pipette-range" in [d["code"] for d in payload["files"][0]["diagnostics"]]
    # --values enables the traceability check.
    values = tmp_path / "values.yaml"
    values.write_text("master_mix_ul: 16\ntemplate_ul: 5\n")
    result = runner.invoke(app, ["validate", str(ok), "--values", str(values)])
    assert result.exit_code == 1 and "15 µL is not one of the user's values" in result.output


def test_cli_exit_2_for_unreadable_input_and_mixed_files(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["validate", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2 and "file not found" in result.output
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    assert runner.invoke(app, ["validate", str(binary)]).exit_code == 2
    ok = tmp_path / "ok.yaml"
    ok.write_text(yaml.safe_dump(good()))
    result = runner.invoke(app, ["validate", str(ok), "--values", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    workflow = LAB / "examples" / "pcr.yaml"
    protocol = LAB / "examples" / "protocols" / "pcr_setup.yaml"
    result = runner.invoke(app, ["validate", str(workflow), str(protocol), "--lab", str(LAB)])
    assert result.exit_code == 0, result.output
    assert "2 file(s) checked against rpl_like_workcell: 0 with errors" in result.output
    # A workflow still needs a lab.
    assert runner.invoke(app, ["validate", str(workflow)]).exit_code == 2


def test_deck_setup_names_the_liquid_not_the_command() -> None:
    from wei_gen.tools.protocol import analyze_protocol, deck_setup

    config = {
        "equipment": [
            {"name": "corning_96_wellplate_360ul_flat", "location": "1"},
            {"name": "nest_12_reservoir_15ml", "location": "2"},
            {"name": "opentrons_96_tiprack_300ul", "location": "3"},
            {"name": "p300_single_gen2", "mount": "left"},
        ],
        "commands": [
            {"name": "Add master mix", "source": "2:A1", "destination": "1:A1", "volume": 50},
            {"name": "Dispense buffer", "source": "2:A2", "destination": "1:A2", "volume": 60},
            {"name": "water", "source": "2:A3", "destination": "1:A3", "volume": 70},
            {"name": "Distribute template DNA", "source": "2:A4", "destination": "1:A4", "volume": 80},
        ],
        "metadata": {"protocolName": "t", "apiLevel": "2.12"},
    }
    text = deck_setup("ot2", "configs/ot2_protocol.yaml", analyze_protocol(config))
    assert "A1: at least 50 µL of master mix" in text
    assert "A2: at least 60 µL of buffer" in text
    assert "A3: at least 70 µL of water" in text
    assert "A4: at least 80 µL of template DNA" in text
