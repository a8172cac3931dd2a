// The engine verdict hook of `kvcomp analyze --engine-model` (and kvcomp.Client.analyze's
// engine_model): judges candidate specs on a llama.cpp state by what the model does with it.
//
//   node engine/judge.mjs --state STATE --model GGUF --server HOST:PORT [--tokens N]
//                         [--cli KVCOMP] --spec SPEC [--spec SPEC ...]
//
// The state's own KV types and v_trans (flash attention off when 1) set up the contexts. The
// reference is the exact state's continuation: loaded into a fresh context, its last cell
// erased and that token fed again (a state file keeps no logits), then N tokens decoded
// greedily. Each spec's state goes through `kvcomp compress` and `decompress` on the server and
// is judged the same way (engine/lib/engine.mjs judge): free-running tokens before the first
// divergence, teacher-forced top-1 agreement and KL. Prints one JSON object:
//   {"tokens": N, "cells": C, "results": [{"spec", "free_running_agree", "free_running",
//     "top1", "kl_mean", "kl_max", "file_ratio", "kv_ratio", "worst_cosine"}]}
// and exits 0; otherwise a message on stderr and exit 1.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {parseArgs} from "node:util";
import {greedy, judge, loadModel, restore} from "./lib/engine.mjs";
import {binaries, roundTrip} from "./lib/kvcomp.mjs";
import {readStateHeader} from "./lib/state.mjs";

const {values} = parseArgs({options: {
    state: {type: "string"}, model: {type: "string"}, server: {type: "string"},
    tokens: {type: "string", default: "64"}, cli: {type: "string"},
    spec: {type: "string", multiple: true, default: []},
}});
try {
    for (const need of ["state", "model", "server"]) {
        if (!values[need]) throw new Error(`--${need} is required`);
    }
    if (values.cli) binaries.cli = values.cli;
    const header = readStateHeader(fs.readFileSync(values.state));
    if (header.cells < 2) throw new Error(`${values.state} holds ${header.cells} cells; judging needs 2 or more`);
    const cache = {kType: header.kType, vType: header.vType, flashAttention: header.vTrans === 0,
        contextSize: 0};
    const model = await loadModel(values.model);
    const trainContext = model.trainContextSize;
    const n = Math.min(Number(values.tokens), trainContext - header.cells);
    if (!(n > 0)) throw new Error(`the model's context (${trainContext}) has no room after ${header.cells} cells`);
    cache.contextSize = Math.min(trainContext, header.cells + n + 1);
    const tokens = header.tokens;
    const first = tokens[tokens.length - 1];
    const ref = await restore(model, cache, values.state, {refeedLast: true});
    let reference;
    try {
        reference = await greedy(ref.seq, first, n);
    } finally {
        await ref.ctx.dispose();
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kvcomp-judge-"));
    const results = [];
    try {
        for (const spec of values.spec) {
            const kvc = path.join(dir, "c.kvc"), restored = path.join(dir, "r.state");
            const trip = roundTrip({address: values.server}, spec, values.state, kvc, restored);
            const v = await judge({model, cache, tokens, exactState: values.state, restoredState: restored,
                reference, refeedLast: true});
            results.push({spec, tokens: v.tokens, free_running_agree: v.freeRunningAgree,
                free_running: v.freeRunningAgree / v.tokens, top1: v.top1, kl_mean: v.klMean,
                kl_max: v.klMax, file_ratio: trip.fileRatio, kv_ratio: trip.totals.KV?.ratio ?? 0,
                worst_cosine: trip.worstCosine});
        }
    } finally {
        fs.rmSync(dir, {recursive: true, force: true});
    }
    process.stdout.write(JSON.stringify({tokens: n, cells: header.cells, results}) + "\n");
} catch (e) {
    process.stderr.write(`judge: ${e.message}\n`);
    process.exit(1);
}
