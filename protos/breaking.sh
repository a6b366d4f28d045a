#!/usr/bin/env bash
# `buf breaking` against the protos of main's last commit (run by `make lint`).
#
# "main's last commit" is, in this order:
#   1. $MLGW_BREAKING_BASE, when set (any git revision);
#   2. on a branch other than main: the merge base with `main` (or `origin/main`), i.e. the
#      last commit of main this branch builds on, so the branch's whole change is checked;
#   3. on main itself (CI checks out main after a merge): HEAD's first parent, the main
#      commit before the change under test. The protos of HEAD itself would compare the
#      change with itself and could never fail.
# The baseline's protos/ is extracted with `git archive`, so a worktree, a detached HEAD and a
# fresh clone all work; a clone without that history (--depth 1) skips it, saying so.
set -euo pipefail
cd "$(dirname "$0")"
BUF=${BUF:-../node_modules/.bin/buf}

head=$(git rev-parse HEAD)
base=${MLGW_BREAKING_BASE:-}
if [[ -z $base ]]; then
  for main in main origin/main; do
    if git rev-parse -q --verify "$main^{commit}" >/dev/null; then
      if [[ $(git rev-parse "$main") != "$head" ]]; then
        base=$(git merge-base HEAD "$main")
      fi
      break
    fi
  done
fi
if [[ -z $base ]]; then
  if ! base=$(git rev-parse -q --verify 'HEAD^1^{commit}'); then
    if [[ $(git rev-parse --is-shallow-repository) == true ]]; then
      # A --depth 1 clone holds no earlier protos to compare with: say so, do not fail the
      # rest of the checks on how the repository was cloned.
      echo "buf breaking: SKIPPED, a shallow clone has no baseline (clone with history)" >&2
      exit 0
    fi
    echo "buf breaking: no baseline commit" >&2
    exit 1
  fi
fi
if [[ $(git rev-parse "$base") == "$head" ]]; then
  # A branch that is main's last commit: compare with the commit before it instead.
  base=$(git rev-parse 'HEAD^1')
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git -C .. archive "$base" protos | tar -x -C "$tmp"
if [[ ! -f $tmp/protos/buf.yaml ]]; then
  echo "buf breaking: $(git rev-parse --short "$base") has no protos/buf.yaml; nothing to compare"
  exit 0
fi
echo "buf breaking: against $(git rev-parse --short "$base") (protos/)"
"$BUF" breaking --against "$tmp/protos"
