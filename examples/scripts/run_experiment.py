"""Run the whole pipeline for one experiment and print what came out (wei_gen v2's scripts/ example, ported).

Needs a model: ``OPENAI_API_KEY`` (or ``OPENAI_BASE_URL`` pointing at an OpenAI-compatible server).

    .venv/bin/python examples/scripts/run_experiment.py [config.yaml]
"""

from __future__ import annotations

import json
import sys

from wei_gen import WEIGen

DESCRIPTION = (
    "Get a new plate from the Sciclops tower, prepare the PCR plate on the OT-2, seal it at 175 °C, "
    "run program 3 on the thermocycler, peel the seal and photograph the plate."
)
VALUES = {"seal_temperature_c": 175, "seal_time_s": 3, "thermocycler_program": 3, "plate_type": 1}


def main() -> None:
    """Create a session, run every step, print the status, the workflow and the session id."""
    with WEIGen(sys.argv[1] if len(sys.argv) > 1 else None) as weigen:
        session = weigen.new_session()
        status = session.execute_experiment(DESCRIPTION, VALUES)
        history = session.get_history()
        print(f"session {session.session_id}: {status.state} {status.step} {status.reason}")
        print(f"P(yes) = {history['validity']:.2f}")
        print(history["generated_workflow"])
        print(json.dumps(history["wei_gen"]["reports"].get("workflow", {}), indent=2)[:2000])


if __name__ == "__main__":
    main()
