#!/usr/bin/env bash
# Release NusterDB VERSION to TestPyPI (default) or PyPI.
#
#   1. checks: a clean git tree, Cargo.toml's [workspace.package] version is VERSION,
#      CHANGELOG.md has a non-empty section for VERSION, and for PyPI: the tag vVERSION does
#      not exist yet and the release commit is pushed (a dry run only warns about the tree,
#      the tag and the push)
#   2. scripts/build.sh: clean build, lint, all tests, the wheel verified in a fresh venv
#   3. twine check --strict dist/*  (twine is installed into the build's venv if missing)
#   4. twine upload --repository testpypi|pypi dist/*   (credentials: ~/.pypirc or TWINE_*)
#   5. PyPI only: git tag -a vVERSION and git push origin vVERSION. The tag makes CI build the
#      wheels for every platform and publish them next to this upload (skip-existing).
#      A TestPyPI upload is the rehearsal and creates no tag: the tag is made once, by the
#      real release, so `release.sh VERSION testpypi` followed by `release.sh VERSION pypi`
#      works.
# --dry-run does everything except steps 4 and 5, whose commands it prints.
#
# The version is not changed here: run scripts/update_version.sh VERSION and commit first.
set -euo pipefail

usage() {
    cat <<USAGE
Usage: $(basename "$0") VERSION [testpypi|pypi] [--dry-run]

  VERSION     the version to release, as in Cargo.toml (X.Y.Z or X.Y.Z-rc.N)
  testpypi    upload to TestPyPI (default); no git tag
  pypi        upload to PyPI, then tag vVERSION and push the tag
  --dry-run   check, build, test and twine check; print the upload, tag and
              push commands instead of running them
  -h, --help  show this help
USAGE
}

VERSION=""
TARGET=""
DRY_RUN=0
while [ "$#" -gt 0 ]; do
    case "$1" in
    -h | --help)
        usage
        exit 0
        ;;
    --dry-run) DRY_RUN=1 ;;
    testpypi | pypi)
        [ -z "$TARGET" ] || { printf 'release.sh: one target only\n' >&2; usage >&2; exit 2; }
        TARGET="$1"
        ;;
    -*)
        printf 'release.sh: unknown option: %s\n' "$1" >&2
        usage >&2
        exit 2
        ;;
    *)
        if [ -n "$VERSION" ]; then
            printf 'release.sh: unexpected argument: %s (target is testpypi or pypi)\n' "$1" >&2
            usage >&2
            exit 2
        fi
        VERSION="$1"
        ;;
    esac
    shift
done
[ -n "$VERSION" ] || { usage >&2; exit 2; }
TARGET="${TARGET:-testpypi}"
TAG="v$VERSION"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PROBLEMS=0

die() {
    printf 'release.sh: error: %s\n' "$*" >&2
    exit 1
}
# A failed check: fatal in a real release, reported and counted in a dry run.
check_failed() {
    if [ "$DRY_RUN" = 1 ]; then
        printf 'release.sh: warning (dry run goes on): %s\n' "$*" >&2
        PROBLEMS=$((PROBLEMS + 1))
    else
        die "$*"
    fi
}
header() { printf '\n===== %s =====\n' "$*"; }
step() {
    printf '\n==> %s\n' "$*"
    "$@"
}
would_run() {
    printf '[dry run] would run:'
    printf ' %q' "$@"
    printf '\n'
}

if [ "$DRY_RUN" = 1 ]; then
    echo "DRY RUN: release $VERSION to $TARGET (nothing is uploaded, tagged or pushed)"
else
    echo "Release $VERSION to $TARGET"
fi

header "1/4 checks"
SEMVER_RE='^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-(alpha|beta|rc)\.(0|[1-9][0-9]*))?$'
[[ "$VERSION" =~ $SEMVER_RE ]] || die "invalid version '$VERSION': expected X.Y.Z or X.Y.Z-alpha.N/-beta.N/-rc.N, without 'v'"

if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    check_failed "$ROOT is not a git work tree"
elif [ -n "$(git status --porcelain)" ]; then
    git status --short >&2
    check_failed "the git tree is not clean: commit or stash the changes above first"
else
    echo "git tree clean at $(git rev-parse --short HEAD)"
fi

CARGO_VERSION="$(awk '
    /^[ \t]*\[/ { in_pkg = ($0 ~ /^[ \t]*\[workspace\.package\][ \t]*(#.*)?$/) }
    in_pkg && /^[ \t]*version[ \t]*=[ \t]*"[^"]*"/ {
        v = $0; sub(/^[^"]*"/, "", v); sub(/".*$/, "", v); print v; exit
    }
' Cargo.toml)"
if [ "$CARGO_VERSION" != "$VERSION" ]; then
    die "Cargo.toml's [workspace.package] version is '$CARGO_VERSION', not '$VERSION': \
run scripts/update_version.sh $VERSION, complete CHANGELOG.md and commit"
fi
echo "Cargo.toml version: $CARGO_VERSION"

[ -f CHANGELOG.md ] || die "CHANGELOG.md is missing"
grep -qF "## [$VERSION]" CHANGELOG.md || die "CHANGELOG.md has no '## [$VERSION]' section: \
run scripts/update_version.sh $VERSION (it adds one) and write the release notes"
# The section's body: the lines after its heading up to the next `## [` heading.
NOTES="$(awk -v h="## [$VERSION]" '
    index($0, h) == 1 { on = 1; next }
    on && /^## \[/ { exit }
    on && /^\[[^]]*\]: / { exit }
    on && /^[ \t]*[-*] / { print }
' CHANGELOG.md)"
[ -n "$NOTES" ] || die "CHANGELOG.md's section for $VERSION lists no change: write the release notes"
echo "CHANGELOG.md section for $VERSION: $(printf '%s\n' "$NOTES" | wc -l | tr -d ' ') entries"

if [ "$TARGET" = pypi ]; then
    if git rev-parse -q --verify "refs/tags/$TAG" >/dev/null 2>&1; then
        check_failed "the tag $TAG exists already: a released version is never rebuilt; release a new version"
    fi
    # The tag must point at a commit others can fetch: the release commit is pushed first.
    if [ -z "$(git branch -r --contains HEAD 2>/dev/null)" ]; then
        check_failed "HEAD is on no remote branch: push the release commit first (git push origin HEAD)"
    fi
fi

header "2/4 build (scripts/build.sh)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
VENV="$WORK/venv"
step scripts/build.sh --venv "$VENV"
if [ -x "$VENV/bin/python" ]; then VPY="$VENV/bin/python"; else VPY="$VENV/Scripts/python.exe"; fi
# The files must carry VERSION in its PEP 440 spelling (1.2.0-rc.1 -> 1.2.0rc1).
PEP440="$(printf '%s' "$VERSION" | sed -e 's/-alpha\./a/' -e 's/-beta\./b/' -e 's/-rc\./rc/')"
DIST=(dist/*)
for f in "${DIST[@]}"; do
    case "$(basename "$f")" in
    "nusterdb-$PEP440-"*.whl | "nusterdb-$PEP440.tar.gz") ;;
    *) die "dist/ holds $f, which is not nusterdb $PEP440" ;;
    esac
done

header "3/4 twine check"
TWINE_OK=1
if ! "$VPY" -m twine --version >/dev/null 2>&1; then
    if ! step "$VPY" -m pip install --quiet twine; then
        TWINE_OK=0
        if [ "$DRY_RUN" = 1 ]; then
            echo "release.sh: warning (dry run goes on): twine could not be installed; dist/ was not checked" >&2
            PROBLEMS=$((PROBLEMS + 1))
        else
            die "twine could not be installed into the build venv"
        fi
    fi
fi
if [ "$TWINE_OK" = 1 ]; then
    step "$VPY" -m twine check --strict "${DIST[@]}"
fi

header "4/4 publish"
UPLOAD=("$VPY" -m twine upload --repository "$TARGET" "${DIST[@]}")
if [ "$DRY_RUN" = 1 ]; then
    would_run twine upload --repository "$TARGET" "${DIST[@]}"
    if [ "$TARGET" = pypi ]; then
        would_run git tag -a "$TAG" -m "Release $VERSION"
        would_run git push origin "$TAG"
    else
        echo "[dry run] a TestPyPI release creates no tag (the PyPI release does)"
    fi
    printf '\nDry run of %s to %s finished with %d problem(s) to fix before the real release.\n' \
        "$VERSION" "$TARGET" "$PROBLEMS"
    exit 0
fi

step "${UPLOAD[@]}"
if [ "$TARGET" = pypi ]; then
    step git tag -a "$TAG" -m "Release $VERSION"
    step git push origin "$TAG"
    cat <<DONE

Released $VERSION to PyPI and pushed $TAG; CI now builds and adds the other platforms'
wheels and the sdist, and creates the GitHub release. Check:
  https://pypi.org/project/nusterdb/$VERSION/
  python -m pip install --upgrade nusterdb==$VERSION
DONE
else
    cat <<DONE

Uploaded $VERSION to TestPyPI. Verify it in a clean environment:
  python -m venv /tmp/nusterdb-testpypi && . /tmp/nusterdb-testpypi/bin/activate
  pip install --index-url https://test.pypi.org/simple/ --extra-index-url https://pypi.org/simple/ nusterdb==$VERSION
  python -c "import nusterdb; print(nusterdb.__version__)"
then release for real: scripts/release.sh $VERSION pypi
DONE
fi
