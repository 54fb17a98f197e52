"""Install and package: `cmake --install` into a prefix, and the .deb installed on this machine and removed again.

Environment (set by tests/CMakeLists.txt):
  SITESYNC_BUILD_DIR  the build tree (its `cmake --install` rules and CPackConfig.cmake are used)
  SITESYNC_BIN        the built binary
  SITESYNC_DEB        optional: a .deb to test instead of making one with cpack (e.g. scripts/package's)

The .deb test installs into /usr with `dpkg -i`: it needs root and dpkg, and skips saying so without them. It
never touches a sitesync that was already on the machine (it skips), and removes what it installed in a
cleanup that runs also when an assertion failed. ctest runs it RUN_SERIAL.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

INSTALLED = {
    "bin": "bin/sitesync",
    "man": "share/man/man1/sitesync.1",
    "bash": "share/bash-completion/completions/sitesync",
    "zsh": "share/zsh/vendor-completions/_sitesync",
}


def run(args, timeout=120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)


def build_dir() -> Path:
    given = os.environ.get("SITESYNC_BUILD_DIR")
    if given:
        return Path(given)
    return Path(harness.sitesync_bin()).resolve().parent.parent


def bash_complete(completion: Path, words: list[str]) -> list[str]:
    script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); _sitesync; '
              'printf "%s\\n" "${COMPREPLY[@]}"')
    res = run(["bash", "--norc", "--noprofile", "-c", script, "bash", str(completion), *words])
    return [w for w in res.stdout.splitlines() if w]


def dpkg_status(package: str) -> str:
    """dpkg's status of a package ("install ok installed", "deinstall ok config-files"); "" when dpkg does not
    know it or it is not installed and has left nothing behind."""
    res = run(["dpkg-query", "-W", "-f=${Status}", package])
    status = res.stdout.strip() if res.returncode == 0 else ""
    return "" if status.endswith(" not-installed") else status


def dpkg(*args: str) -> subprocess.CompletedProcess:
    """dpkg ARGS, waiting (bounded) while another dpkg or apt holds the lock."""
    deadline = time.monotonic() + 120
    while True:
        res = run(["dpkg", *args], timeout=300)
        locked = res.returncode != 0 and re.search(r"lock", res.stderr, re.I)
        if not locked or time.monotonic() > deadline:
            return res
        time.sleep(2)


def needed_packages(binary: str) -> set[str]:
    """The Debian packages that provide the libraries BINARY links directly (readelf NEEDED, ldd, dpkg -S)."""
    needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", run(["readelf", "-d", binary]).stdout))
    paths = {}
    for line in run(["ldd", binary]).stdout.splitlines():
        m = re.match(r"\s*(\S+) => (/\S+)", line)
        if m and m.group(1) in needed:
            paths[m.group(1)] = m.group(2)
    if set(paths) != needed:
        raise AssertionError(f"ldd did not resolve {sorted(needed - set(paths))}")
    packages = set()
    for lib, path in paths.items():
        owner = ""
        for candidate in (path, os.path.realpath(path)):
            res = run(["dpkg", "-S", candidate])
            if res.returncode == 0:
                owner = res.stdout.split(":", 1)[0].strip()
                break
        if not owner:
            raise AssertionError(f"no package owns {lib} ({path})")
        packages.add(owner)
    return packages


class CmakeInstallTest(unittest.TestCase):
    """`cmake --install` puts the binary, the man page and the completions where GNUInstallDirs says."""

    def test_install_into_a_prefix(self):
        build = build_dir()
        if not (build / "cmake_install.cmake").exists():
            self.skipTest(f"no build tree at {build}")
        with tempfile.TemporaryDirectory(prefix="sitesync-install-") as prefix:
            res = run(["cmake", "--install", str(build), "--prefix", prefix])
            self.assertEqual(res.returncode, 0, res.stderr + res.stdout)
            for rel in INSTALLED.values():
                self.assertTrue(Path(prefix, rel).is_file(), f"{rel} not installed; got: {sorted(self.files(prefix))}")
            self.assertTrue(os.access(Path(prefix, INSTALLED["bin"]), os.X_OK))
            res = run([str(Path(prefix, INSTALLED["bin"])), "--version"])
            self.assertRegex(res.stdout, r"^sitesync \d+\.\d+\.\d+")
            # The installed files are what the installed binary generates.
            res = run([str(Path(prefix, INSTALLED["bin"])), "--generate-man"])
            self.assertEqual(Path(prefix, INSTALLED["man"]).read_text(), res.stdout)
            res = run([str(Path(prefix, INSTALLED["bin"])), "--generate-completion", "bash"])
            self.assertEqual(Path(prefix, INSTALLED["bash"]).read_text(), res.stdout)
            if shutil.which("man"):
                res = run(["man", "-w", "sitesync"], env={**os.environ, "MANPATH": f"{prefix}/share/man"})
                self.assertEqual(res.stdout.strip(), f"{prefix}/{INSTALLED['man']}", res.stderr)

    @staticmethod
    def files(root: str) -> list[str]:
        return [str(p.relative_to(root)) for p in Path(root).rglob("*") if p.is_file()]


class DebPackageTest(unittest.TestCase):
    """The .deb: its control fields, then dpkg -i on this machine, the installed files, and dpkg -r."""

    def setUp(self):
        if not shutil.which("dpkg") or not shutil.which("dpkg-deb"):
            self.skipTest("dpkg is not installed: the .deb cannot be installed here")
        if os.geteuid() != 0:
            self.skipTest("not root: dpkg -i of the .deb needs root (run as root or with sudo)")
        if dpkg_status("sitesync"):
            self.skipTest(f"a sitesync package is already on this machine ({dpkg_status('sitesync')}); "
                          "not touching it (dpkg -r sitesync to run this test)")
        for rel in INSTALLED.values():
            if Path("/usr", rel).exists():
                self.skipTest(f"/usr/{rel} exists and is not from a sitesync package; not overwriting it")
        self.tmp = Path(tempfile.mkdtemp(prefix="sitesync-deb-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def make_deb(self) -> Path:
        given = os.environ.get("SITESYNC_DEB")
        if given:
            return Path(given)
        build = build_dir()
        config = build / "CPackConfig.cmake"
        if not config.exists() or not shutil.which("cpack"):
            self.skipTest(f"no cpack or no {config}: set SITESYNC_DEB to a .deb (scripts/package makes one)")
        res = run(["cpack", "-G", "DEB", "--config", str(config), "-B", str(self.tmp)], timeout=240)
        self.assertEqual(res.returncode, 0, res.stdout[-4000:] + res.stderr[-4000:])
        debs = sorted(self.tmp.glob("sitesync_*.deb"))
        self.assertEqual(len(debs), 1, f"cpack made {debs}")
        return debs[0]

    def test_deb_installs_and_removes_cleanly(self):
        deb = self.make_deb()
        fields = {}
        for name in ("Package", "Version", "Architecture", "Section", "Maintainer", "Depends", "Description"):
            fields[name] = run(["dpkg-deb", "-f", str(deb), name]).stdout.strip()
        self.assertEqual(fields["Package"], "sitesync")
        self.assertEqual(fields["Section"], "utils")
        self.assertTrue(fields["Maintainer"])
        self.assertTrue(fields["Description"])
        self.assertEqual(fields["Architecture"], run(["dpkg", "--print-architecture"]).stdout.strip())
        depends = {re.split(r"[\s(]", d.strip())[0] for d in fields["Depends"].split(",") if d.strip()}
        self.assertEqual(depends, needed_packages(harness.sitesync_bin()),
                         f"Depends: {fields['Depends']}")
        contents = run(["dpkg-deb", "-c", str(deb)]).stdout
        for rel in INSTALLED.values():
            self.assertIn(f" ./usr/{rel}\n", contents + "\n")

        self.addCleanup(self.restore_machine)
        res = dpkg("-i", str(deb))
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertEqual(dpkg_status("sitesync"), "install ok installed")

        res = run(["/usr/bin/sitesync", "--version"])
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stdout.strip(), f"sitesync {fields['Version']}")
        if shutil.which("man"):
            res = run(["man", "-w", "sitesync"])
            self.assertEqual((res.returncode, res.stdout.strip()), (0, f"/usr/{INSTALLED['man']}"), res.stderr)
        listed = run(["dpkg", "-L", "sitesync"]).stdout.splitlines()
        for rel in INSTALLED.values():
            self.assertTrue(Path("/usr", rel).is_file(), f"/usr/{rel} missing")
            self.assertIn(f"/usr/{rel}", listed)
        # The installed bash completion works as installed.
        self.assertEqual(bash_complete(Path("/usr", INSTALLED["bash"]), ["sitesync", "sy"]), ["sync"])

        res = dpkg("-r", "sitesync")
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertEqual(dpkg_status("sitesync"), "")
        for rel in INSTALLED.values():
            self.assertFalse(Path("/usr", rel).exists(), f"/usr/{rel} still there after dpkg -r")

    def restore_machine(self):
        """Runs also when the test failed: purges what this test installed (setUp made sure it was not there)."""
        if dpkg_status("sitesync"):
            res = dpkg("--purge", "sitesync")
            if res.returncode != 0:
                raise AssertionError(f"dpkg --purge sitesync failed: {res.stdout}{res.stderr}")
        leftovers = [f"/usr/{rel}" for rel in INSTALLED.values() if Path("/usr", rel).exists()]
        if dpkg_status("sitesync") or leftovers:
            raise AssertionError(f"machine not restored: {dpkg_status('sitesync')} {leftovers}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
