"""The engine's verdict for Client.analyze(..., engine_model=...): the Python side of
`kvcomp analyze --engine-model` (client/cli/engine_verdict.h, docs/ENGINES.md).

After the server's analysis, the best configurations are compressed, restored and loaded into
llama.cpp by the engine hook (engine/judge.mjs, or any program speaking its protocol), which
reports greedy and teacher-forced agreement with the exact cache and the KL divergence. With
`min_agreement`, agreement (the smaller of the teacher-forced top-1 agreement and the share of
greedy tokens kept) is a threshold of the recommendation, like the error bounds.
"""

import json
import os
import shlex
import subprocess
from typing import List, Optional

from kvcomp.v1 import kvcomp_pb2 as pb


def agreement(e: pb.EngineVerdict) -> float:
    free = e.free_running_agree / e.tokens if e.tokens else 0.0
    return min(e.top1, free)


def _describe(e: pb.EngineVerdict) -> str:
    return (f"agreement {agreement(e):.3f}: top-1 {e.top1:.3f}, "
            f"{e.free_running_agree}/{e.tokens} greedy tokens, max KL {e.kl_max:.2e}")


def hook_command(hook) -> List[str]:
    """The hook's words: `hook` (a list or a string), else $KVCOMP_ENGINE_HOOK."""
    if hook is None:
        hook = os.environ.get("KVCOMP_ENGINE_HOOK", "")
    words = shlex.split(hook) if isinstance(hook, str) else list(hook)
    if not words:
        raise ValueError("no engine hook: pass engine_hook=['node', '<repo>/engine/judge.mjs'] "
                         "or set KVCOMP_ENGINE_HOOK")
    return words


def apply_engine_verdict(response: pb.AnalyzeResponse, *, state: str, model: str, server: str,
                         hook=None, candidates: int = 6, tokens: int = 64,
                         min_agreement: Optional[float] = None, error_bounds_given: bool = True,
                         budget_bytes: Optional[int] = None, cli: Optional[str] = None) -> None:
    """Judges the best configurations of `response` on the llama.cpp state `state` and folds the
    verdicts (CodecAnalysis.engine) and, with min_agreement, the recommendation into it."""
    passing = [c for c in response.codecs if not c.error and (
        c.passes or (not error_bounds_given and
                     (budget_bytes is None or c.totals.compressed_bytes <= budget_bytes)))]
    passing.sort(key=lambda c: -c.totals.ratio)
    judged = passing[:candidates]
    lossless = next((c for c in passing if c.lossless), None)
    if lossless is not None and lossless not in judged:
        judged.append(lossless)  # keeps every token: a threshold always leaves a choice
    if not judged:
        return
    argv = hook_command(hook) + ["--state", state, "--model", model, "--server", server,
                                 "--tokens", str(tokens)]
    if cli:
        argv += ["--cli", cli]
    for c in judged:
        argv += ["--spec", c.codec]
    done = subprocess.run(argv, stdout=subprocess.PIPE, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the engine hook {argv[0]!r} failed (see its message above)")
    verdicts = {r["spec"]: r for r in json.loads(done.stdout)["results"]}
    for c in judged:
        r = verdicts[c.codec]
        c.engine.CopyFrom(pb.EngineVerdict(
            judged=True, tokens=r["tokens"], free_running_agree=r["free_running_agree"],
            top1=r["top1"], kl_mean=r["kl_mean"], kl_max=r["kl_max"], file_ratio=r["file_ratio"]))
    if min_agreement is None:
        return
    best = closest = None
    for c in passing:
        if not c.engine.judged:
            c.passes = False
            c.verdict = f"not judged by the engine (the {candidates} best are)"
            continue
        a = agreement(c.engine)
        if closest is None or a > agreement(closest.engine):
            closest = c
        c.passes = a >= min_agreement
        if c.passes:
            c.verdict = f"passes at KV {c.totals.ratio:.3f}x, engine agreement {a:.3f}"
            best = best or c
        else:
            c.verdict = f"engine: agreement {a:.3f} < {min_agreement:.3f}"
    rec = response.recommendation
    del rec.runners_up[:]
    for c in passing:
        if c is best or not c.engine.judged:
            continue
        why = (f"passes, but KV {c.totals.ratio:.3f}x < {best.totals.ratio:.3f}x" if c.passes
               else f"{_describe(c.engine)} < {min_agreement:.3f}")
        rec.runners_up.add(codec=c.codec, why=why)
    chosen = best or closest
    rec.found = best is not None
    rec.codec = chosen.codec
    rec.ratio = chosen.totals.ratio
    rec.why = (f"best of the judged configurations that meet the thresholds and keep agreement >= "
               f"{min_agreement:.3f} with the exact cache ({_describe(best.engine)}): KV "
               f"{best.totals.ratio:.3f}x" if best else
               f"no judged configuration keeps agreement >= {min_agreement:.3f}; closest: "
               f"{_describe(closest.engine)}")
