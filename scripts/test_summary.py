#!/usr/bin/env python3
"""The end of `./dev test`: what ctest ran, read from its JUnit report (ctest --output-junit).

    test_summary.py JUNIT_XML... ALLOWLIST

(several reports, e.g. the default preset's and the fuzz preset's, are counted together)

Prints each skipped test with its reason, then one last line "N passed, N failed, N skipped".
A test is skipped when ctest says so (SKIP_RETURN_CODE, e.g. a script's `exit 77`;
SKIP_REGULAR_EXPRESSION, e.g. GoogleTest's "[  SKIPPED ]" for GTEST_SKIP()) or when it is
DISABLED; a test ctest could not run (no executable) is a failure, as ctest counts it.

The reason is taken from the test's output: a line "SKIP: <reason>" (the shell tests), or the
message GoogleTest prints between "<file>:<line>: Skipped" and "[  SKIPPED ]".

Under CI (the environment variable CI set, and not to "false" or "0") a skipped test is a
failure unless ALLOWLIST lists it with a reason: one test a line, "<ctest name> <reason>";
blank lines and lines starting with '#' are ignored. Exit status: 1 when a test failed or, under
CI, a skip is not allowed; 0 otherwise.
"""

import os
import re
import sys
import xml.etree.ElementTree as ET

# ctest's <skipped message> for the tests it skipped on purpose; any other "notrun" is an error.
SKIP_MESSAGES = re.compile(r"^(SKIP_RETURN_CODE=\d+|SKIP_REGULAR_EXPRESSION_MATCHED)$")
GTEST_SKIPPED = re.compile(r"^\S.*:\d+: Skipped$")


def skip_reason(output):
    """The reason a skipped test gave in its output, or None."""
    lines = output.splitlines()
    for line in lines:
        m = re.match(r"^\s*SKIP:\s*(.*\S)", line)
        if m:
            return m.group(1)
    for i, line in enumerate(lines):
        if GTEST_SKIPPED.match(line.strip()):
            text = []
            for follow in lines[i + 1:]:
                if follow.startswith("[  SKIPPED ]"):
                    break
                if follow.strip():
                    text.append(follow.strip())
            if text:
                return " ".join(text)
    return None


def read_allowlist(path):
    """{test name: reason}; an entry without a reason is an error (returned apart)."""
    allowed, errors = {}, []
    if not os.path.exists(path):
        return allowed, errors
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 1)
            if len(parts) < 2:
                errors.append(f"{path}:{number}: '{parts[0]}' has no reason")
                continue
            allowed[parts[0]] = parts[1]
    return allowed, errors


def in_ci():
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    reports, allowlist_path = argv[1:-1], argv[-1]
    cases = []
    for junit in reports:
        try:
            cases.extend(ET.parse(junit).getroot().iter("testcase"))
        except (OSError, ET.ParseError) as e:
            print(f"test summary: cannot read ctest's report {junit}: {e}", file=sys.stderr)
            return 1
    allowed, errors = read_allowlist(allowlist_path)
    ci = in_ci()
    passed, failed, skipped = 0, [], []
    for case in cases:
        name = case.get("name", "?")
        status = case.get("status", "")
        output = case.findtext("system-out") or ""
        skip = case.find("skipped")
        if status == "run":
            passed += 1
        elif status == "disabled":
            skipped.append((name, "DISABLED in its CMakeLists.txt"))
        elif status == "notrun" and skip is not None and SKIP_MESSAGES.match(skip.get("message", "")):
            reason = skip_reason(output)
            skipped.append((name, reason or f"no reason in its output ({skip.get('message')})"))
        else:
            failed.append(name)

    # Under CI a skip the allowlist does not name counts as a failure.
    rel = os.path.relpath(allowlist_path)
    unlisted = []
    for name, reason in skipped:
        if name in allowed:
            note = f"  [in {rel}: {allowed[name]}]"
        elif ci:
            note = f"  [CI: not in {rel}, counted as failed]"
            unlisted.append(name)
        else:
            note = ""
        print(f"skipped: {name}: {reason}{note}")
    for e in errors:
        print(f"allowlist error: {e}")
    if unlisted:
        print(f"CI: a skipped test fails the run unless {rel} lists it with the reason; install"
              " what it needs (./dev setup) or list it there")
    n_failed = len(failed) + len(unlisted)
    n_skipped = len(skipped) - len(unlisted)
    print(f"{passed} passed, {n_failed} failed, {n_skipped} skipped")
    return 1 if n_failed or (ci and errors) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
