#!/usr/bin/env bash
# Set NusterDB's version: the one line `version = "..."` under [workspace.package] in the
# workspace Cargo.toml. Everything else follows from it: both crates use
# `version.workspace = true`, pyproject.toml declares `dynamic = ["version"]` (maturin reads
# Cargo), and `nusterdb.__version__` is `env!("CARGO_PKG_VERSION")` in the extension.
#
# It also opens the release's section in CHANGELOG.md (a `## [X.Y.Z] - DATE` heading right under
# `## [Unreleased]`, so the unreleased notes become the release's notes, and the compare links at
# the bottom move on), and brings the workspace crates' entries in Cargo.lock to the new version
# so that the commit that is tagged does not carry a stale lock file.
#
# Accepted versions (Cargo's semver):  X.Y.Z  and the pre-releases  X.Y.Z-alpha.N,
# X.Y.Z-beta.N, X.Y.Z-rc.N.  The dot before N is required: semver compares `rc10` < `rc9` as
# text but `rc.10` > `rc.9` as numbers. maturin publishes X.Y.Z-rc.N as the PEP 440 version
# X.Y.ZrcN (alpha -> a, beta -> b).
#
# Nothing is written unless every file can be updated; nothing is committed.
set -euo pipefail

usage() {
    cat <<USAGE
Usage: $(basename "$0") X.Y.Z [--root DIR] [--date YYYY-MM-DD]

Set the workspace version in Cargo.toml (the only place it lives), add a
'## [X.Y.Z] - DATE' section under '## [Unreleased]' in CHANGELOG.md and update the
workspace crates' entries in Cargo.lock.

  X.Y.Z          the new version: X.Y.Z or X.Y.Z-alpha.N / -beta.N / -rc.N
  --root DIR     the repository to edit (default: the one holding this script)
  --date DATE    the release date written in CHANGELOG.md (default: today)
  -h, --help     show this help
USAGE
}

die() {
    printf 'update_version.sh: error: %s\n' "$*" >&2
    exit 1
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NEW=""
DATE=""
while [ "$#" -gt 0 ]; do
    case "$1" in
    -h | --help)
        usage
        exit 0
        ;;
    --root)
        [ "$#" -ge 2 ] || { usage >&2; exit 2; }
        ROOT="$2"
        shift 2
        ;;
    --date)
        [ "$#" -ge 2 ] || { usage >&2; exit 2; }
        DATE="$2"
        shift 2
        ;;
    -*)
        printf 'update_version.sh: unknown option: %s\n' "$1" >&2
        usage >&2
        exit 2
        ;;
    *)
        [ -z "$NEW" ] || { printf 'update_version.sh: one version only\n' >&2; usage >&2; exit 2; }
        NEW="$1"
        shift
        ;;
    esac
done
[ -n "$NEW" ] || { usage >&2; exit 2; }

SEMVER_RE='^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-(alpha|beta|rc)\.(0|[1-9][0-9]*))?$'
if ! [[ "$NEW" =~ $SEMVER_RE ]]; then
    hint="expected X.Y.Z or X.Y.Z-alpha.N / X.Y.Z-beta.N / X.Y.Z-rc.N (numbers without leading zeros)"
    case "$NEW" in
    v[0-9]*) hint="$hint; drop the leading 'v' (the git tag gets it: v${NEW#v})" ;;
    *-rc[0-9]* | *-alpha[0-9]* | *-beta[0-9]*)
        hint="$hint; write the pre-release with a dot (e.g. ${NEW%%-*}-rc.1), so that rc.10 sorts after rc.9"
        ;;
    esac
    die "invalid version '$NEW': $hint"
fi

if [ -z "$DATE" ]; then
    DATE="$(date +%Y-%m-%d)"
elif ! [[ "$DATE" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]]; then
    die "invalid date '$DATE': expected YYYY-MM-DD"
fi

[ -d "$ROOT" ] || die "no such directory: $ROOT"
ROOT="$(cd "$ROOT" && pwd)"
CARGO_TOML="$ROOT/Cargo.toml"
CHANGELOG="$ROOT/CHANGELOG.md"
CARGO_LOCK="$ROOT/Cargo.lock"
[ -f "$CARGO_TOML" ] || die "$CARGO_TOML not found (is --root the repository root?)"
[ -f "$CHANGELOG" ] || die "$CHANGELOG not found"

# The version under [workspace.package], or nothing.
workspace_version() {
    awk '
        /^[ \t]*\[/ { in_pkg = ($0 ~ /^[ \t]*\[workspace\.package\][ \t]*(#.*)?$/) }
        in_pkg && /^[ \t]*version[ \t]*=[ \t]*"[^"]*"/ {
            v = $0; sub(/^[^"]*"/, "", v); sub(/".*$/, "", v); print v; exit
        }
    ' "$1"
}

OLD="$(workspace_version "$CARGO_TOML")"
[ -n "$OLD" ] || die "$CARGO_TOML has no 'version = \"...\"' line under [workspace.package]; \
the version must live there (and the crates use version.workspace = true)"
grep -q '^## \[Unreleased\]' "$CHANGELOG" || die "$CHANGELOG has no '## [Unreleased]' heading to put the release under"

TMPDIR_UV="$(mktemp -d)"
trap 'rm -rf "$TMPDIR_UV"' EXIT

# 1. Cargo.toml: the first `version = "..."` under [workspace.package], rest of the line kept.
awk -v new="$NEW" '
    /^[ \t]*\[/ { in_pkg = ($0 ~ /^[ \t]*\[workspace\.package\][ \t]*(#.*)?$/) }
    in_pkg && !done && /^[ \t]*version[ \t]*=[ \t]*"[^"]*"/ {
        q = index($0, "\""); rest = substr($0, q + 1)
        print substr($0, 1, q) new substr(rest, index(rest, "\""))
        done = 1; next
    }
    { print }
' "$CARGO_TOML" >"$TMPDIR_UV/Cargo.toml"

# 2. CHANGELOG.md: the new heading under [Unreleased] (unless the section exists already), and
#    the Keep-a-Changelog compare links `[unreleased]: .../compare/vOLD...HEAD` moved on.
if grep -qF "## [$NEW]" "$CHANGELOG"; then
    echo "CHANGELOG.md already has a section for $NEW: left as it is"
    cp "$CHANGELOG" "$TMPDIR_UV/CHANGELOG.md"
else
    awk -v new="$NEW" -v date="$DATE" '
        !added && /^## \[Unreleased\]/ {
            print; print ""; print "## [" new "] - " date; added = 1; next
        }
        /^\[[Uu]nreleased\]: / && index($0, "/compare/") && $0 ~ /\.\.\.HEAD[ \t]*$/ {
            label = substr($0, 1, index($0, "]"))
            url = substr($0, index($0, ": ") + 2)
            base = substr(url, 1, index(url, "/compare/") - 1)
            range = substr(url, index(url, "/compare/") + 9)
            prev = substr(range, 1, index(range, "...") - 1)
            print label ": " base "/compare/v" new "...HEAD"
            print "[" new "]: " base "/compare/" prev "...v" new
            next
        }
        { print }
    ' "$CHANGELOG" >"$TMPDIR_UV/CHANGELOG.md"
fi

# 3. Cargo.lock (when present): local packages (no `source = ` line) still at the old version
#    are the workspace crates; registry packages are never touched.
if [ -f "$CARGO_LOCK" ]; then
    awk -v old="$OLD" -v new="$NEW" '
        function flush(   i, line) {
            for (i = 1; i <= n; i++) {
                line = buf[i]
                if (is_pkg && !has_source && line == "version = \"" old "\"") line = "version = \"" new "\""
                print line
            }
            n = 0; has_source = 0; is_pkg = 0
        }
        /^\[\[package\]\][ \t]*$/ { flush(); is_pkg = 1 }
        /^source = / { has_source = 1 }
        { buf[++n] = $0 }
        END { flush() }
    ' "$CARGO_LOCK" >"$TMPDIR_UV/Cargo.lock"
fi

# Everything computed: write in place (cat keeps the files' modes and owners).
cat "$TMPDIR_UV/Cargo.toml" >"$CARGO_TOML"
cat "$TMPDIR_UV/CHANGELOG.md" >"$CHANGELOG"
if [ -f "$CARGO_LOCK" ]; then
    cat "$TMPDIR_UV/Cargo.lock" >"$CARGO_LOCK"
fi

# Verify.
grep -qF "version = \"$NEW\"" "$CARGO_TOML" || die "verification failed: $CARGO_TOML does not contain version = \"$NEW\""
[ "$(workspace_version "$CARGO_TOML")" = "$NEW" ] || die "verification failed: [workspace.package] version is not $NEW"
grep -qF "## [$NEW]" "$CHANGELOG" || die "verification failed: $CHANGELOG has no '## [$NEW]' section"

echo "Version: $OLD -> $NEW"
echo "  $CARGO_TOML  [workspace.package] version = \"$NEW\""
echo "  $CHANGELOG  ## [$NEW] section (fill it in from [Unreleased])"
[ -f "$CARGO_LOCK" ] && echo "  $CARGO_LOCK  workspace crates at $NEW"
cat <<NEXT

Next: review with 'git diff', complete CHANGELOG.md, run scripts/test_all.sh, then commit:
  git commit -am "Release $NEW"
NEXT
