#!/usr/bin/env bash
# A release gate for a federation proxy's CI, built on s2spec: run the
# conformance cases in shards, merge them, gate on a baseline of known
# deviations and write the difference to the previous run as Markdown.
# docs/ci/github-actions.yml and docs/ci/gitlab-ci.yml only call this script.
#
# Usage:
#   scripts/ci-gate.sh shard K N   run shard K of N into $S2SPEC_OUT/shard-K/
#   scripts/ci-gate.sh gate        merge $S2SPEC_OUT/shard-*/report.json into
#                                  $S2SPEC_OUT/merged/, gate, write diff.md
#   scripts/ci-gate.sh all         every shard in turn, then gate (local use)
#
# Environment (all optional):
#   S2SPEC            the s2spec binary (default: target/release/s2spec,
#                     built with `cargo build --release --locked` when missing)
#   S2SPEC_SHARDS     N for `all` (default 2)
#   S2SPEC_OUT        output directory (default ci-out)
#   S2SPEC_RUN_ARGS   extra `s2spec run` arguments, split on blanks, e.g.
#                     "--target external --target-addr 127.0.0.1:5269
#                      --certs pki --no-wait" for the vendor's target
#   S2SPEC_BASELINE   baseline file (`s2spec baseline`); without it any
#                     failure fails the gate
#   S2SPEC_BASELINE_STRICT=1   fixed entries fail the gate too
#   S2SPEC_PREVIOUS   report.json of the previous run (e.g. of the main
#                     branch): its difference goes to $S2SPEC_OUT/diff.md and,
#                     on GitHub, to the job summary
#
# Exit status: 0 the gate holds, 1 it fails (new or worse cases), 2 the
# harness or the script could not do its job.
set -euo pipefail

out="${S2SPEC_OUT:-ci-out}"
read -r -a run_args <<< "${S2SPEC_RUN_ARGS:-}"

die() {
    echo "ci-gate.sh: $*" >&2
    exit 2
}

s2spec_bin() {
    if [[ -n "${S2SPEC:-}" ]]; then
        [[ -x "$S2SPEC" ]] || die "S2SPEC=$S2SPEC is not an executable"
        echo "$S2SPEC"
        return
    fi
    if [[ ! -x target/release/s2spec ]]; then
        cargo build --release --locked >&2 || die "cargo build failed"
    fi
    echo target/release/s2spec
}

# One shard. A failing case is the gate's business, not the shard's: only
# harness trouble (exit 2) stops here.
shard() {
    local k="$1" n="$2" bin status=0
    [[ "$k" =~ ^[0-9]+$ && "$n" =~ ^[0-9]+$ ]] || die "shard: K and N must be numbers"
    bin="$(s2spec_bin)"
    echo "== shard $k/$n" >&2
    "$bin" run --partition "$k/$n" --report-dir "$out/shard-$k" "${run_args[@]}" || status=$?
    case "$status" in
        0 | 1) return 0 ;;
        *) die "shard $k/$n: s2spec run exited $status" ;;
    esac
}

gate() {
    local bin status=0 diff_status=0
    bin="$(s2spec_bin)"
    local shards=("$out"/shard-*/report.json)
    [[ -e "${shards[0]}" ]] || die "gate: no $out/shard-*/report.json (run the shards first)"
    local gate_args=()
    if [[ -n "${S2SPEC_BASELINE:-}" ]]; then
        gate_args+=(--baseline "$S2SPEC_BASELINE")
        [[ "${S2SPEC_BASELINE_STRICT:-}" == 1 ]] && gate_args+=(--baseline-strict)
    fi
    echo "== merge ${#shards[@]} shard(s) into $out/merged" >&2
    "$bin" merge --report-dir "$out/merged" "${gate_args[@]}" "${shards[@]}" || status=$?
    if [[ -n "${S2SPEC_PREVIOUS:-}" ]]; then
        echo "== diff against $S2SPEC_PREVIOUS" >&2
        "$bin" diff "$S2SPEC_PREVIOUS" "$out/merged/report.json" --format markdown \
            > "$out/diff.md" || diff_status=$?
        [[ "$diff_status" -le 1 ]] || die "diff exited $diff_status"
        cat "$out/diff.md"
        if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then
            cat "$out/diff.md" >> "$GITHUB_STEP_SUMMARY"
        fi
        # Without a baseline, "worse than before" is the gate.
        if [[ -z "${S2SPEC_BASELINE:-}" && "$status" -eq 1 && "$diff_status" -eq 0 ]]; then
            status=0
        fi
    fi
    echo "== gate: exit $status (junit: $out/merged/junit.xml)" >&2
    return "$status"
}

case "${1:-}" in
    shard)
        [[ $# -eq 3 ]] || die "usage: ci-gate.sh shard K N"
        shard "$2" "$3"
        ;;
    gate)
        gate
        ;;
    all)
        n="${S2SPEC_SHARDS:-2}"
        [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "S2SPEC_SHARDS=$n is not a positive number"
        [[ -n "$out" && "$out" != / ]] || die "S2SPEC_OUT must name a directory"
        rm -rf "$out"
        for ((k = 1; k <= n; k++)); do
            shard "$k" "$n"
        done
        gate
        ;;
    *)
        die "usage: ci-gate.sh shard K N | gate | all"
        ;;
esac
