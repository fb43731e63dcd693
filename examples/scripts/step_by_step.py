"""Run the pipeline one step at a time, refine the workflow in chat, and reload the session by id.

.venv/bin/python examples/scripts/step_by_step.py [config.yaml]
"""

from __future__ import annotations

import sys

from wei_gen import WEIGen


def main() -> None:
    """Plan, workflow, a chat refinement, then the code and configs of a reloaded session."""
    config = sys.argv[1] if len(sys.argv) > 1 else None
    with WEIGen(config) as weigen:
        session = weigen.new_session()
        print(session.framework_step("Read the absorbance of a new plate at 600 nm on the Hidex.", "wavelength: 600"))
        print(session.workflow_step())
        print(session.call_gen_env("workflow", "Photograph the plate after the reading, please."))
        session_id = session.session_id
    with WEIGen(config) as weigen:  # e.g. in another process, later
        session = weigen.load_session(session_id)
        print(session.code_step(), session.config_step())
        print(session.get_history()["generated_code"])


if __name__ == "__main__":
    main()
