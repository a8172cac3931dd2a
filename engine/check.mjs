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
//
// Then analyze's engine verdict, from the CLI (--engine-model, --min-agreement 0.99) and from
// Python (Client.analyze(engine_model=...)): the recommended spec must be one the engine judged
// at agreement >= 0.99, every judged configuration's verdict must match its agreement, and both
// clients must recommend the same spec.
import {execFileSync} from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {describeCache, modelsDir, repoRoot} from "./lib/engine.mjs";
import {runCase} from "./lib/fidelity.mjs";
import {binaries, startServer} from "./lib/kvcomp.mjs";

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
let analyzeVerdict = null;
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
    analyzeVerdict = checkAnalyze(path.join(workDir, "F16-F16-fa0", "exact.state"));
} finally {
    await server.stop();
}

// kvcomp analyze --engine-model on a state, from the CLI and from Python.
function checkAnalyze(state) {
    const model = path.join(modelsDir, "stories260K-f32.gguf");
    const json = path.join(workDir, "analyze.json");
    execFileSync(binaries.cli, ["analyze", state, "--server", server.address, "--engine-model", model,
        "--min-agreement", "0.99", "--engine-tokens", "32", "--json", json], {stdio: "ignore"});
    const r = JSON.parse(fs.readFileSync(json, "utf8"));
    const agreement = (e) => Math.min(e.top1, e.tokens ? e.free_running_agree / e.tokens : 0);
    const judged = r.codecs.filter((c) => c.engine?.judged);
    const rec = r.recommendation;
    const chosen = judged.find((c) => c.codec === rec.codec);
    if (!rec.found || !chosen) failures.push(`analyze: no judged recommendation (${rec.why})`);
    else if (agreement(chosen.engine) < 0.99) failures.push(`analyze recommended ${rec.codec} at agreement ${agreement(chosen.engine)}`);
    for (const c of judged) {
        if (c.passes !== agreement(c.engine) >= 0.99) failures.push(`analyze: ${c.codec} passes=${c.passes} at agreement ${agreement(c.engine)}`);
    }
    if (judged.length < 2) failures.push(`analyze judged ${judged.length} configurations`);
    // The same through the Python client (Debian's python3, the package the build generates).
    const py = execFileSync("/usr/bin/python3", ["-c", `
import kvcomp, sys
st = kvcomp.load_llama_state(sys.argv[1])
with kvcomp.Client(sys.argv[2]) as c:
    r = c.analyze(st.tensors, bf16=st.bf16_names, token_major=True, engine_model=sys.argv[3],
                  engine_state=sys.argv[1], min_agreement=0.99, engine_tokens=32,
                  engine_hook=["node", sys.argv[4]], engine_cli=sys.argv[5])
print(r.recommendation.codec)
`, state, server.address, model, path.join(repoRoot, "engine/judge.mjs"), binaries.cli],
        {encoding: "utf8", env: {...process.env, PYTHONPATH: path.join(path.dirname(binaries.cli), "python")}});
    if (py.trim() !== rec.codec) failures.push(`Python's analyze recommends ${py.trim()}, the CLI's ${rec.codec}`);
    return {codec: rec.codec, why: rec.why, judged: judged.length};
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
console.log(`analyze --engine-model --min-agreement 0.99 (CLI and Python): ${analyzeVerdict.codec} ` +
    `of ${analyzeVerdict.judged} judged; ${analyzeVerdict.why}`);
console.log(`engine-check: every lossless round trip byte-identical, 100% agreement, identical ` +
    `distributions (${rows.length - 1} round trips, ${seconds.toFixed(1)} s); results in ${workDir}`);
