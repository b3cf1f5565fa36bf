"""A/B application slots and their state file /ota_state.json.

State: {"active": "a"|"b", "versions": {"a": str|None, "b": str|None},
"trial": bool, "boots": int, "rejected": [str]}. "trial" means that the active
slot contains a new version not yet confirmed by a successful check-in, and
"boots" counts its unconfirmed boots. "rejected" lists the versions that failed
verification, installation or their trial, which the device does not take again. Every write goes to a temporary file that one os.rename puts
in place: littlefs (the rp2 filesystem) renames atomically, so a power cut leaves
either the old or the new state, never a mix.
"""
from micropython import const
import json
import os
import log

STATE_PATH = "/ota_state.json"
STATE_TMP_PATH = "/ota_state.tmp"
# Not "/slots": MicroPython imports a folder as a namespace package before a .py
# file of the same name, so a /slots folder would shadow slots.py at "import slots".
SLOTS_ROOT = "/app_slots"
SLOT_NAMES = ("a", "b")
APP_FILE = "app.py"
# Version assumed for slot a when the state file is missing or unreadable: the
# factory image. If slot a holds something newer, the server simply offers the
# newest release again and the device heals itself.
FACTORY_VERSION = "1.0.0"
_DIR_MODE = const(0x4000)
MAX_REJECTED = const(4)

_log = log.Logger("slots")


def slot_dir(slot):
    return SLOTS_ROOT + "/" + slot


def other(slot):
    return "b" if slot == "a" else "a"


def has_app(slot):
    try:
        os.stat(slot_dir(slot) + "/" + APP_FILE)
        return True
    except OSError:
        return False


def default_state():
    """Return the state that boots: slot a with the factory app, or b if a is empty."""
    active = "a" if has_app("a") or not has_app("b") else "b"
    versions = {"a": None, "b": None}
    versions[active] = FACTORY_VERSION
    return {"active": active, "versions": versions, "trial": False, "boots": 0, "rejected": []}


def _valid(state):
    if not isinstance(state, dict) or state.get("active") not in SLOT_NAMES:
        return False
    versions = state.get("versions")
    if not isinstance(versions, dict):
        return False
    for slot in SLOT_NAMES:
        if not (versions.get(slot) is None or isinstance(versions.get(slot), str)):
            return False
    if not isinstance(state.setdefault("rejected", []), list):
        return False
    return isinstance(state.get("trial"), bool) and isinstance(state.get("boots"), int) and state["boots"] >= 0


def load():
    """Read the state; a missing, corrupt or unbootable state falls back to default_state()."""
    try:
        with open(STATE_PATH) as f:
            state = json.load(f)
    except OSError:
        _log.info("no state file, using the factory default")
        return default_state()
    except ValueError as err:
        _log.error("state file corrupt, using the factory default:", err)
        return default_state()
    if not _valid(state):
        _log.error("state file has invalid fields, using the factory default:", state)
        return default_state()
    if not has_app(state["active"]):
        _log.error("active slot has no app.py, using the factory default:", state["active"])
        return default_state()
    return state


def save(state):
    """Write state atomically: temporary file, then one rename over the old file."""
    # One write of the whole text: json.dump would issue a flash write per token.
    text = json.dumps(state)
    with open(STATE_TMP_PATH, "w") as f:
        f.write(text)
    os.rename(STATE_TMP_PATH, STATE_PATH)


def running_version(state):
    return state["versions"][state["active"]] or "0.0.0"


def begin_trial(state, slot, version):
    """Return the state that boots version from slot on trial."""
    versions = dict(state["versions"])
    versions[slot] = version
    return {"active": slot, "versions": versions, "trial": True, "boots": 0, "rejected": state["rejected"]}


def confirmed(state):
    return {"active": state["active"], "versions": state["versions"], "trial": False, "boots": 0,
            "rejected": state["rejected"]}


def rejecting(state, version):
    """Return state with version added to the rejected list (the newest MAX_REJECTED kept)."""
    rejected = [item for item in state["rejected"] if item != version] + [version]
    result = dict(state)
    result["rejected"] = rejected[-MAX_REJECTED:]
    return result


def rolled_back(state):
    """Return the state that boots the other slot again, without trial, rejecting the trial version."""
    result = {"active": other(state["active"]), "versions": state["versions"], "trial": False, "boots": 0,
              "rejected": state["rejected"]}
    return rejecting(result, state["versions"][state["active"]])


def remove_tree(path):
    try:
        entries = list(os.ilistdir(path))
    except OSError:
        return
    for entry in entries:
        child = path + "/" + entry[0]
        if entry[1] == _DIR_MODE:
            remove_tree(child)
        else:
            os.remove(child)
    os.rmdir(path)


def clear(slot):
    """Empty a slot folder, creating /slots and the folder if missing."""
    remove_tree(slot_dir(slot))
    for path in (SLOTS_ROOT, slot_dir(slot)):
        try:
            os.mkdir(path)
        except OSError:
            pass  # the folder exists already
