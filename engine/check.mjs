// make engine-check: llama.cpp states through a real kvcomp-server, judged by the model.
//
//   node engine/check.mjs [WORK_DIR]        (KVCOMP_CLI / KVCOMP_SERVER: the binaries)
//
// For each cache llama.cpp keeps (F16, BF16, F32, Q8_0; flash attention on and off, which
// stores V untransposed or transposed): a prompt is run into a fresh context and its state
// saved; the state goes through `kvcomp compress` and `kvcomp decompress` with a lossless spec
// and is loaded into a fresh context. The test: the restored file is byte-identical, greedy
// decoding from it agrees with the uninterrupted run on every token, and teacher-forced, its
// next-token distributions are identical to the exact state's at every position (KL 0).
// One lossy spec is measured and reported too (the full table: `make bench-engine`).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {describeCache} from "./lib/engine.mjs";
import {runCase} from "./lib/fidelity.mjs";
import {startServer} from "./lib/kvcomp.mjs";

const workDir = process.argv[2] ?? fs.mkdtempSync(path.join(os.tmpdir(), "kvcomp-engine-check-"));
const prompt = "Once upon a time";
const cachedTokens = 100, continuation = 32;
const caches = [
    {kType: "F16", vType: "F16", flashAttention: false},
    {kType: "F16", vType: "F16", flashAttention: true},
    {kType: "BF16", vType: "BF16", flashAttention: false},
    {kType: "BF16", vType: "BF16", flashAttention: true},
    {kType: "F32", vType: "F32", flashAttention: false},
    {kType: "F32", vType: "F32", flashAttention: true},
    {kType: "Q8_0", vType: "Q8_0", flashAttention: true},  // a quantised V needs flash attention
    {kType: "Q8_0", vType: "F16", flashAttention: false},
];
const lossless = ["lossless", "lossless-max"];
const lossy = "bounded(cos=0.9999)";

const started = performance.now();
const server = await startServer();
const failures = [];
const rows = [];
try {
    for (const cache of caches) {
        const specs = [...lossless, ...(cache === caches[0] ? [lossy] : [])];
        const dir = path.join(workDir, `${cache.kType}-${cache.vType}-fa${cache.flashAttention ? 1 : 0}`);
        const c = await runCase({server, cache, prompt, cachedTokens, continuation, specs, workDir: dir});
        for (const r of c.results) {
            rows.push({cache: describeCache(cache), cells: c.cells, llamaSaveMs: c.llamaSaveMs,
                llamaLoadMs: c.llamaLoadMs, ...r});
            if (r.codec === lossy) continue;
            const why = [];
            if (!r.byteIdentical) why.push("restored state differs from the saved one");
            if (r.freeRunningAgree !== r.tokens) why.push(`greedy diverged at token ${r.freeRunningAgree}`);
            if (r.top1 !== 1) why.push(`teacher-forced top-1 agreement ${r.top1}`);
            if (!r.identicalDistributions || r.klMax !== 0) why.push(`distributions differ (max KL ${r.klMax})`);
            if (why.length) failures.push(`${describeCache(cache)}, ${r.codec}: ${why.join("; ")}`);
        }
    }
} finally {
    await server.stop();
}

const fmt = (x, d = 3) => Number(x).toFixed(d);
console.log(`engine-check: ${cachedTokens} cached tokens of "${prompt}...", ${continuation} tokens judged`);
console.log("cache                                   spec                 state B   .kvc B  ratio  " +
    "free-run  top-1   mean KL   max KL  identical  llama save/load ms  kvcomp c/d ms");
for (const r of rows) {
    console.log(`${r.cache.padEnd(39)} ${r.codec.padEnd(20)} ${String(r.stateBytes).padStart(7)} ` +
        `${String(r.kvcBytes).padStart(8)} ${fmt(r.fileRatio).padStart(6)} ` +
        `${`${r.freeRunningAgree}/${r.tokens}`.padStart(8)} ${fmt(r.top1).padStart(6)} ` +
        `${r.klMean.toExponential(2).padStart(9)} ${r.klMax.toExponential(2).padStart(8)} ` +
        `${String(r.identicalDistributions).padStart(9)}  ${fmt(r.llamaSaveMs, 2)} / ${fmt(r.llamaLoadMs, 2)}` +
        `          ${fmt(r.compressMs, 1)} / ${fmt(r.decompressMs, 1)}`);
}
fs.writeFileSync(path.join(workDir, "engine-check.json"), JSON.stringify(rows, null, 1));
const seconds = (performance.now() - started) / 1000;
if (failures.length) {
    console.error(`engine-check: FAILED (${seconds.toFixed(1)} s)\n  ${failures.join("\n  ")}`);
    process.exit(1);
}
console.log(`engine-check: every lossless round trip byte-identical, 100% agreement, identical ` +
    `distributions (${rows.length - 1} round trips, ${seconds.toFixed(1)} s); results in ${workDir}`);
