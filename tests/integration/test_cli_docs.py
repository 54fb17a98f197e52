"""The man page and the shell completions against the binary's own --help (no S3 server needed).

The build writes sitesync.1, sitesync.bash and _sitesync by running `sitesync --generate-man` and
`--generate-completion bash|zsh` (cli/CMakeLists.txt); their paths come in SITESYNC_MAN_PAGE,
SITESYNC_BASH_COMPLETION and SITESYNC_ZSH_COMPLETION (else they are generated here from SITESYNC_BIN).

- Drift: every command listed by `sitesync --help`, and every option and positional of `sitesync CMD --help`,
  appears in that command's section of the man page, is offered by the bash completion for that command (the
  completion function really run in bash), and is in the zsh completion's block for it.
- The page renders without a warning in groff (-ww) and man; it has the sections a man page needs.
- bash: `sitesync sy<TAB>`, `sitesync sync --com<TAB>`, --compare values, file and folder names.
- zsh: syntax (zsh -n), and completion in a real interactive zsh on a pseudo-terminal (zsh/zpty).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

HERE = Path(__file__).resolve().parent


def run(args, timeout=60, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)


def sitesync(*args) -> str:
    res = run([harness.sitesync_bin(), *args], timeout=30)
    if res.returncode != 0:
        raise AssertionError(f"sitesync {' '.join(args)} exited {res.returncode}: {res.stderr}")
    return res.stdout


def help_commands() -> list[str]:
    """The subcommands listed under 'Subcommands:' in `sitesync --help`."""
    out = sitesync("--help")
    section = out.split("Subcommands:", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in section.splitlines() if line.strip()]


def help_items(*command: str) -> tuple[list[str], list[str]]:
    """(option spellings, positional names) from `sitesync [COMMAND] --help`."""
    out = sitesync(*command, "--help")
    options, positionals = [], []
    section = None
    for line in out.splitlines():
        if line in ("Options:", "Positionals:"):
            section = line
            continue
        if not line.strip():
            section = None
            continue
        m = re.match(r"^  (\S+)", line)
        if not m or section is None:
            continue
        if section == "Positionals:":
            positionals.append(m.group(1))
        else:
            options.extend(s for s in m.group(1).split(",") if s.startswith("-"))
    return options, positionals


def roff_to_text(roff: str) -> str:
    text = re.sub(r"\\f[BIRP]", "", roff)
    return text.replace("\\-", "-").replace("\\&", "").replace("\\e", "\\")


def generated(env_name: str, *generate_args: str, tmp: Path, name: str) -> Path:
    given = os.environ.get(env_name)
    if given:
        return Path(given)
    path = tmp / name
    path.write_text(sitesync(*generate_args))
    return path


def bash_complete(completion: Path, words: list[str], cwd: str | None = None) -> list[str]:
    """COMPREPLY of the generated completion for the command line WORDS (the last one is being completed)."""
    script = (
        'source "$1"; shift\n'
        'COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))\n'
        'COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}\n'
        '_sitesync sitesync "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"\n'
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    res = run(["bash", "--norc", "--noprofile", "-c", script, "bash", str(completion), *words], cwd=cwd)
    if res.returncode != 0 or res.stderr:
        raise AssertionError(f"bash completion of {words} failed ({res.returncode}): {res.stderr}")
    return [w for w in res.stdout.splitlines() if w]


# Completes a line in an interactive zsh on a pseudo-terminal and appends every candidate the completion system
# offered to OUT, one a line. compadd is wrapped: calls that only filter (-O/-A/-D) pass through untouched.
ZSH_CAPTURE = r"""
zmodload zsh/zpty || exit 3
compdir=$1 out=$2 line=$3
zpty -b z zsh -f -i
zpty -w z "PS1='' PROMPT='' RPROMPT=''; fpath=(${(q)compdir} \$fpath); autoload -Uz compinit; compinit -u -D"
zpty -w z "bindkey '^I' complete-word; zstyle ':completion:*' menu no"
zpty -w z 'compadd() { local -a __m; if (( ${@[(I)-[OAD]]} )); then builtin compadd "$@"; return; fi; builtin compadd -O __m "$@"; print -rl -- "${__m[@]}" >>'"${(q)out}"'; builtin compadd "$@"; }'
zpty -w z "print -r -- READY-\$((6*7))"
integer i
buf=
for i in {1..200}; do
  zpty -r -t z chunk && buf+=$chunk
  [[ $buf == *READY-42* ]] && break
  sleep 0.05
done
[[ $buf == *READY-42* ]] || { print -u2 "zsh did not start"; zpty -d z; exit 4 }
zpty -w -n z "$line"$'\t'
for i in {1..100}; do
  [[ -s $out ]] && { sleep 0.3; break }
  sleep 0.05
done
zpty -d z
"""


class CliDocsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ok, why = harness.sitesync_available()
        if not ok:
            raise unittest.SkipTest(why)
        cls.tmp = Path(tempfile.mkdtemp(prefix="sitesync-docs-"))
        cls.man = generated("SITESYNC_MAN_PAGE", "--generate-man", tmp=cls.tmp, name="sitesync.1")
        cls.bash = generated("SITESYNC_BASH_COMPLETION", "--generate-completion", "bash", tmp=cls.tmp,
                             name="sitesync.bash")
        cls.zsh = generated("SITESYNC_ZSH_COMPLETION", "--generate-completion", "zsh", tmp=cls.tmp,
                            name="_sitesync")
        cls.commands = help_commands()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # -- the generated files are what the binary generates now ------------------------------------------------

    def test_build_outputs_are_current(self):
        self.assertEqual(self.man.read_text(), sitesync("--generate-man"))
        self.assertEqual(self.bash.read_text(), sitesync("--generate-completion", "bash"))
        self.assertEqual(self.zsh.read_text(), sitesync("--generate-completion", "zsh"))

    def test_generators_are_hidden_from_help(self):
        self.assertNotIn("--generate", sitesync("--help"))

    def test_generator_misuse_is_a_usage_error(self):
        res = run([harness.sitesync_bin(), "--generate-completion", "fish"])
        self.assertEqual(res.returncode, 2, res.stderr)
        self.assertIn("fish", res.stderr)
        res = run([harness.sitesync_bin(), "sync", "--generate-man"])
        self.assertEqual(res.returncode, 2, res.stderr)

    # -- drift ------------------------------------------------------------------------------------------------

    def man_sections(self) -> dict[str, str]:
        """Text of each `.SS NAME` subsection of COMMANDS, and of .SH OPTIONS under the key ''."""
        roff = self.man.read_text()
        sections: dict[str, str] = {}
        current = None
        for line in roff.splitlines():
            if line.startswith(".SH "):
                current = "" if line == ".SH OPTIONS" else None
                continue
            if line.startswith(".SS "):
                current = line[4:].strip().strip('"')
                continue
            if current is not None:
                sections[current] = sections.get(current, "") + roff_to_text(line) + "\n"
        return sections

    def test_help_lists_every_command(self):
        self.assertEqual(self.commands, ["sync", "plan", "watch", "invalidate", "sitemap", "init", "check"])

    def test_every_option_of_help_is_in_the_man_page(self):
        sections = self.man_sections()
        self.assertEqual([k for k in sections if k], self.commands)
        top, _ = help_items()
        self.assertEqual(top, ["-h", "--help", "--version"])
        for opt in top:
            self.assertRegex(sections[""], rf"(^|[\s,]){re.escape(opt)}(\s|,|$)", f"man page OPTIONS lacks {opt}")
        for cmd in self.commands:
            options, positionals = help_items(cmd)
            self.assertTrue(options, cmd)
            for opt in options:
                with self.subTest(command=cmd, option=opt):
                    self.assertRegex(sections[cmd], rf"(^|[\s,]){re.escape(opt)}(\s|,|$)")
            for pos in positionals:
                with self.subTest(command=cmd, positional=pos):
                    self.assertRegex(sections[cmd], rf"(^|\s){pos}\b")

    def test_every_option_of_help_is_completed_by_bash(self):
        self.assertEqual(bash_complete(self.bash, ["sitesync", ""]), self.commands)
        for cmd in self.commands:
            options, _ = help_items(cmd)
            offered = bash_complete(self.bash, ["sitesync", cmd, "-"])
            with self.subTest(command=cmd):
                self.assertEqual(sorted(offered), sorted(options))

    def test_every_option_of_help_is_in_the_zsh_completion(self):
        text = self.zsh.read_text()
        blocks = re.split(r"^        (\w+)\)\n", text, flags=re.M)
        per_command = dict(zip(blocks[1::2], blocks[2::2]))
        self.assertEqual(list(per_command), self.commands)
        for cmd in self.commands:
            options, positionals = help_items(cmd)
            for opt in options:
                with self.subTest(command=cmd, option=opt):
                    self.assertRegex(per_command[cmd], rf"'[^']*\){re.escape(opt)}[=\[]|'\*?{re.escape(opt)}[=\[]")
            for pos in positionals:
                with self.subTest(command=cmd, positional=pos):
                    self.assertRegex(per_command[cmd], rf"'(\d+|\*):{pos}:")

    # -- the man page -----------------------------------------------------------------------------------------

    def test_man_page_sections(self):
        roff = self.man.read_text()
        self.assertRegex(roff, r'(?m)^\.TH SITESYNC 1 "[^"]*" "sitesync \d+\.\d+\.\d+"')
        for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "COMMANDS", "CONFIGURATION", "ENVIRONMENT",
                        "EXIT STATUS", "FILES", "EXAMPLES", "SEE ALSO"):
            self.assertRegex(roff, rf"(?m)^\.SH {section}$")
        text = roff_to_text(roff)
        for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION",
                    "AWS_DEFAULT_REGION", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "NO_COLOR",
                    "XDG_STATE_HOME"):
            self.assertIn(var, text.split(".SH ENVIRONMENT", 1)[1].split(".SH ", 1)[0])
        exit_status = text.split(".SH EXIT STATUS", 1)[1].split(".SH ", 1)[0]
        self.assertEqual(re.findall(r"(?m)^\.B (\d)$", exit_status), ["0", "1", "2", "3"])
        for key in ("source", "destination", "max_deletes", "cdn.distribution", "cdn.bare_alias",
                    "watch.debounce_ms", "headers"):
            self.assertIn(key, text.split(".SH CONFIGURATION", 1)[1].split(".SH ENVIRONMENT", 1)[0])
        # The examples are those of --help.
        help_text = sitesync("--help")
        examples = re.findall(r"(?m)^  (sitesync \S.*)$", help_text.split("Examples:", 1)[1])
        self.assertGreaterEqual(len(examples), 5)
        for example in examples:
            self.assertIn(example, text.split(".SH EXAMPLES", 1)[1])
        self.assertIn(".BR aws (1),", roff)
        self.assertIn(".BR rclone (1)", roff)

    def test_man_page_escapes_roff_specials(self):
        roff = self.man.read_text()
        for line in roff.splitlines():
            if line.startswith((".", "'")):
                # A request: must be one of the macros the generator writes, never text that begins with '.'.
                self.assertRegex(line, r"^(\.\\\"|\.(TH|SH|SS|TP|PP|RS|RE|nf|fi|br|nh|ad|B|I|BR|BI|RB|IR) ?)", line)
            else:
                # In text, every '-' is written \- (an ASCII hyphen-minus that copies and searches as '-').
                self.assertNotRegex(line, r"(?<!\\)-", line)

    def test_man_page_renders_without_warnings(self):
        if not shutil.which("groff"):
            self.skipTest("groff is not installed (Debian: groff-base)")
        res = run(["groff", "-man", "-Tutf8", "-ww", "-z", str(self.man)])
        self.assertEqual((res.returncode, res.stderr), (0, ""))
        if shutil.which("man"):
            res = run(["man", "--warnings=w", "-l", str(self.man)], env={**os.environ, "MANPAGER": "cat",
                                                                            "MANWIDTH": "80"})
            self.assertEqual(res.returncode, 0, res.stderr)
            self.assertEqual(res.stderr, "")
            self.assertRegex(res.stdout, r"sitesync\s+-\s+publish\s+a\s+static\s+site\s+folder")
            self.assertIn("--max-deletes N", res.stdout)

    # -- bash -------------------------------------------------------------------------------------------------

    def test_bash_registers_the_function(self):
        res = run(["bash", "--norc", "-c", 'source "$1" && complete -p sitesync', "bash", str(self.bash)])
        self.assertEqual(res.stdout.strip(), "complete -F _sitesync sitesync", res.stderr)

    def test_bash_completes_commands_and_options(self):
        self.assertEqual(bash_complete(self.bash, ["sitesync", "sy"]), ["sync"])
        self.assertEqual(bash_complete(self.bash, ["sitesync", "sync", "--com"]), ["--compare"])
        self.assertEqual(bash_complete(self.bash, ["sitesync", "--ver"]), ["--version"])
        self.assertEqual(bash_complete(self.bash, ["sitesync", "watch", "--deb"]), ["--debounce"])
        self.assertEqual(bash_complete(self.bash, ["sitesync", "sync", "--no-"]),
                         ["--no-verify-ssl", "--no-delete", "--no-invalidate"])
        self.assertEqual(bash_complete(self.bash, ["sitesync", "sitemap", "--o"]), ["--output"])
        self.assertEqual(bash_complete(self.bash, ["sitesync", "invalidate", "--w"]), ["--wait"])

    def test_bash_completes_compare_values(self):
        self.assertEqual(bash_complete(self.bash, ["sitesync", "sync", "--compare", ""]), ["size", "checksum"])
        self.assertEqual(bash_complete(self.bash, ["sitesync", "plan", "--compare", "c"]), ["checksum"])
        # --compare=c: bash splits the word at '=' (COMP_WORDBREAKS).
        self.assertEqual(bash_complete(self.bash, ["sitesync", "sync", "--compare", "=", "c"]), ["checksum"])
        self.assertEqual(bash_complete(self.bash, ["sitesync", "sync", "--compare", "="]), ["size", "checksum"])

    def test_bash_completes_files_and_folders(self):
        with tempfile.TemporaryDirectory() as d:
            Path(d, "public").mkdir()
            Path(d, "pages").mkdir()
            Path(d, "site.yaml").write_text("source: public\n")
            Path(d, "pretty.txt").write_text("x")
            # SOURCE: folders only.
            self.assertEqual(sorted(bash_complete(self.bash, ["sitesync", "sync", "p"], cwd=d)), ["pages", "public"])
            # -c FILE and sitemap -o FILE: file names.
            self.assertEqual(sorted(bash_complete(self.bash, ["sitesync", "sync", "-c", "s"], cwd=d)), ["site.yaml"])
            self.assertEqual(sorted(bash_complete(self.bash, ["sitesync", "sitemap", "-o", "pr"], cwd=d)),
                             ["pretty.txt"])
            self.assertEqual(sorted(bash_complete(self.bash, ["sitesync", "sitemap", "pu"], cwd=d)), ["public"])
            # DEST (the second positional, after an option and its value): nothing to offer.
            self.assertEqual(bash_complete(self.bash, ["sitesync", "sync", "--jobs", "8", "public", "p"], cwd=d), [])
            # An option's value that is not a file: nothing.
            self.assertEqual(bash_complete(self.bash, ["sitesync", "sync", "--region", "p"], cwd=d), [])
            # The value of --config is not counted as SOURCE: the next word is SOURCE again.
            self.assertEqual(sorted(bash_complete(self.bash, ["sitesync", "sync", "--config", "site.yaml", "p"],
                                                  cwd=d)), ["pages", "public"])

    # -- zsh --------------------------------------------------------------------------------------------------

    def zsh_or_skip(self) -> str:
        zsh = shutil.which("zsh")
        if not zsh:
            self.skipTest("zsh is not installed (scripts/test installs it)")
        return zsh

    def test_zsh_completion_parses(self):
        zsh = self.zsh_or_skip()
        self.assertTrue(self.zsh.read_text().startswith("#compdef sitesync\n"))
        res = run([zsh, "-n", str(self.zsh)])
        self.assertEqual((res.returncode, res.stderr), (0, ""))

    def zsh_complete(self, line: str) -> list[str]:
        zsh = self.zsh_or_skip()
        with tempfile.TemporaryDirectory() as d:
            compdir = Path(d, "functions")
            compdir.mkdir()
            shutil.copy(self.zsh, compdir / "_sitesync")
            script = Path(d, "capture.zsh")
            script.write_text(ZSH_CAPTURE)
            out = Path(d, "candidates")
            res = run([zsh, "-f", str(script), str(compdir), str(out), line], timeout=60, cwd=d,
                      env={**os.environ, "HOME": d, "TERM": "dumb"})
            self.assertEqual(res.returncode, 0, res.stderr)
            return out.read_text().split() if out.exists() else []

    def test_zsh_completes_commands_and_options(self):
        self.assertEqual(self.zsh_complete("sitesync sy"), ["sync"])
        self.assertIn("--compare", self.zsh_complete("sitesync sync --com"))
        self.assertEqual(sorted(self.zsh_complete("sitesync sync --compare ")), ["checksum", "size"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
