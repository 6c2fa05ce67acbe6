"""Build-time: the uv options that install wheels for the image's platform from the build machine.

    python target_python.py TARGET_DPKG_STATUS TARGETARCH

Prints `--python-platform <arch>-manylinux_2_<N> --python-version <X.Y.Z>` for the target stage
whose dpkg status file is given (bind-mounted from it): the architecture from TARGETARCH, N from
the target's glibc (libc6, capped at the newest manylinux tag uv knows), X.Y.Z from the target's
python3.X-minimal. The venv is created, and its byte code compiled, by the build machine's
python3, so that one must be the same X.Y as the target's: anything else fails here, before a
single wheel is installed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

# TARGETARCH (buildx) -> the machine part of manylinux tags.
MACHINES = {"amd64": "x86_64", "arm64": "aarch64"}
# The newest manylinux_2_N that uv's --python-platform names (uv 0.13: 2_40).
NEWEST_GLIBC_MINOR = 40


def installed(status: str) -> dict[str, str]:
    """Package -> version of the installed packages in a dpkg status file."""
    found: dict[str, str] = {}
    for stanza in status.split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): (.*)$", stanza, flags=re.M))
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            found[fields["Package"]] = fields.get("Version", "")
    return found


def upstream(version: str) -> str:
    """`3.13.5` of `3.13.5-2+deb13u5`, `2.41` of `2.41-12+deb13u5` (no epoch, no revision)."""
    return version.split(":", 1)[-1].rsplit("-", 1)[0]


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    status_file, arch = Path(argv[1]), argv[2]
    machine = MACHINES.get(arch)
    if machine is None:
        print(f"error: TARGETARCH={arch}: wheels are installed for {', '.join(MACHINES)} only",
              file=sys.stderr)
        return 2
    packages = installed(status_file.read_text())
    pythons = sorted(p for p in packages if re.fullmatch(r"python3\.\d+-minimal", p))
    if len(pythons) != 1 or "libc6" not in packages:
        print(f"error: {status_file} does not have exactly one python3.X-minimal and libc6 "
              f"(found {pythons}): is it the status file of the target's base stage?",
              file=sys.stderr)
        return 2
    python = upstream(packages[pythons[0]])
    glibc_minor = int(upstream(packages["libc6"]).split(".")[1])
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if ".".join(python.split(".")[:2]) != here:
        print(f"error: the target's Python is {python} but the build machine's is {here}: the "
              "venv and its byte code are made by the build machine's; use a BASE_IMAGE whose "
              "platforms carry the same Debian release", file=sys.stderr)
        return 2
    tag = f"{machine}-manylinux_2_{min(glibc_minor, NEWEST_GLIBC_MINOR)}"
    print(f"--python-platform {tag} --python-version {python}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
