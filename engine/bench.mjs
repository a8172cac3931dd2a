// make bench-engine: the figures of docs/BENCHMARKS.md, "A real engine", on states llama.cpp
// saves itself, through a real kvcomp-server on 127.0.0.1.
//
//   node engine/bench.mjs [WORK_DIR]        (KVCOMP_CLI / KVCOMP_SERVER: the binaries)
//
//  1. Lossless ratios (K, V, KV and the whole file) of lossless and lossless-max on F16, BF16
//     and F32 states of the unpadded model (420 cells), beside zstd -3 and -19 on the same file.
//  2. The fidelity table: lossy specs on F16 states of several prompts (420 cached tokens, 64
//     judged): ratio, worst cosine, free-running agreement, teacher-forced top-1 and KL.
//  3. Q8_0 (the padded model, head dims three-quarters zeros: evidence of correctness only):
//     the bytes of the scales and of the quants after each pipeline's stages.
//  4. Time: the whole state round trip (kvcomp compress + decompress, each a CLI process and a
//     call to the server) beside llama.cpp's own save and load, and the codec in process.
import {execFileSync} from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {describeCache, loadModel, modelFor, prefillAndSave, promptTokens} from "./lib/engine.mjs";
import {runCase} from "./lib/fidelity.mjs";
import {binaries, startServer} from "./lib/kvcomp.mjs";

const workDir = process.argv[2] ?? fs.mkdtempSync(path.join(os.tmpdir(), "kvcomp-bench-engine-"));
fs.mkdirSync(workDir, {recursive: true});
const cachedTokens = 420, continuation = 64;
const prompts = ["Once upon a time", "Tom and Lily went to the park", "The little dog was sad because",
    "One day, a big red ball"];
const kivi = (bits) => `kv(k=quant(bits=${bits},group=channel)+zstd(19),` +
    `v=quant(bits=${bits},group=token)+zstd(19))`;
const lossySpecs = ["lossless", "bounded(cos=0.9999)", "bounded(cos=0.999)", "bounded(cos=0.99)",
    kivi(8), kivi(4), "protected(sink=4,recent=64,bounded(cos=0.99))",
    `protected(sink=4,recent=64,${kivi(4)})`];
const out = {cachedTokens, continuation, prompts};
const fmt = (x, d = 3) => Number(x).toFixed(d);
const zstdBytes = (file, level) =>
    execFileSync("zstd", [`-${level}`, "-c", "-q", file], {maxBuffer: 64 << 20}).length;

const server = await startServer();
try {
    // 1. Lossless ratios, and 4. time, on the unpadded model's float caches.
    out.lossless = [];
    for (const kType of ["F16", "BF16", "F32"]) {
        const cache = {kType, vType: kType, flashAttention: false};
        for (const prompt of prompts.slice(0, 2)) {
            const dir = path.join(workDir, `lossless-${kType}-${prompts.indexOf(prompt)}`);
            const c = await runCase({server, cache, prompt, cachedTokens, continuation: 16,
                specs: ["lossless", "lossless-max"], workDir: dir});
            const exact = path.join(dir, "exact.state");
            const inProcess = JSON.parse(execFileSync(binaries.cli,
                ["bench", exact, "--codec", "lossless", "--runs", "9", "--json"]));
            out.lossless.push({
                cache: describeCache(cache), prompt, cells: c.cells, stateBytes: c.stateBytes,
                zstd3: c.stateBytes / zstdBytes(exact, 3), zstd19: c.stateBytes / zstdBytes(exact, 19),
                llamaSaveMs: c.llamaSaveMs, llamaLoadMs: c.llamaLoadMs,
                codecCompressMs: 1e3 * inProcess.compress_seconds.sort((a, b) => a - b)[4],
                codecDecompressMs: 1e3 * inProcess.decompress_seconds.sort((a, b) => a - b)[4],
                results: c.results.map((r) => ({codec: r.codec, totals: r.totals, fileRatio: r.fileRatio,
                    byteIdentical: r.byteIdentical, agree: r.freeRunningAgree, compressMs: r.compressMs,
                    decompressMs: r.decompressMs})),
            });
        }
    }
    // 2. Fidelity of lossy specs on F16 caches.
    out.fidelity = [];
    for (const prompt of prompts) {
        const cache = {kType: "F16", vType: "F16", flashAttention: false};
        const c = await runCase({server, cache, prompt, cachedTokens, continuation, specs: lossySpecs,
            workDir: path.join(workDir, `fidelity-${prompts.indexOf(prompt)}`)});
        out.fidelity.push({prompt, cells: c.cells, results: c.results.map((r) => ({
            codec: r.codec, totals: r.totals, fileRatio: r.fileRatio, worstCosine: r.worstCosine,
            agree: r.freeRunningAgree, tokens: r.tokens, top1: r.top1, klMean: r.klMean, klMax: r.klMax,
            divergenceMargin: r.divergenceMargin,
        }))});
    }
    // 3. Q8_0 stage bytes on the padded model.
    const cache = {kType: "Q8_0", vType: "Q8_0", flashAttention: true};
    const model = await loadModel(modelFor(cache));
    const tokens = await promptTokens(model, cache, prompts[0], cachedTokens);
    const q8 = path.join(workDir, "q8_0.state");
    const saved = await prefillAndSave(model, cache, tokens, q8);
    await saved.ctx.dispose();
    out.q8 = {cells: cachedTokens, stateBytes: fs.statSync(q8).size, pipelines: []};
    for (const spec of ["zstd(3)", "qsplit+huff", "qsplit+qhuff", "qsplit+rans", "qsplit+cm",
        "lossless", "lossless-max"]) {
        const kvc = path.join(workDir, "q8.kvc");
        execFileSync(binaries.cli, ["compress", q8, "-o", kvc, "--codec", spec, "--server",
            server.address, "--force", "--quiet"]);
        const parts = {blocks: 0, frames: 0, scales: 0, quants: 0, other: 0, side: 0};
        let pipelines = new Set();
        for (const line of execFileSync(binaries.cli, ["info", kvc], {encoding: "utf8"}).split("\n")) {
            const side = line.match(/^side record at offset 0: .*?, (\d+) bytes/);
            if (side) parts.side = +side[1];
            const m = line.match(/^\s*\d+\s+\d+\s+layer\d+_[kv].*?\s(\d+)\s+(\d+)\s+[\d.]+x\s+\S+\s+(\S+)\s+\[([\d ]*)\]$/);
            if (!m) continue;
            const streams = m[4].trim().split(/\s+/).map(Number);
            parts.blocks += +m[1];
            parts.frames += +m[2];
            pipelines.add(m[3]);
            if (m[3].includes("qsplit")) {
                // [dedupe's rows: scales, quants, row map] or [scales, quants]
                parts.scales += streams[0];
                parts.quants += streams[1];
                parts.other += streams.slice(2).reduce((a, b) => a + b, 0);
            } else {
                parts.other += streams.reduce((a, b) => a + b, 0);
            }
        }
        parts.headers = parts.frames - parts.scales - parts.quants - parts.other;
        out.q8.pipelines.push({spec, recorded: [...pipelines], ...parts,
            kvcBytes: fs.statSync(kvc).size});
    }
} finally {
    await server.stop();
}
fs.writeFileSync(path.join(workDir, "bench-engine.json"), JSON.stringify(out, null, 1));

// Markdown, as docs/BENCHMARKS.md quotes it.
console.log(`\n### Lossless, ${cachedTokens}-cell states of stories260K (v_trans 1)\n`);
console.log("| cache | prompt | state bytes | zstd -3 | zstd -19 | lossless K / V / KV | file | " +
    "lossless-max K / V / KV | file |");
console.log("|---|---|---|---|---|---|---|---|---|");
for (const r of out.lossless) {
    const [a, b] = r.results;
    const kv = (x) => `${fmt(x.totals.K.ratio)} / ${fmt(x.totals.V.ratio)} / ${fmt(x.totals.KV.ratio)}`;
    console.log(`| ${r.cache.split(",")[0]} | ${r.prompt} | ${r.stateBytes} | ${fmt(r.zstd3)} | ${fmt(r.zstd19)} | ` +
        `${kv(a)} | ${fmt(a.fileRatio)} | ${kv(b)} | ${fmt(b.fileRatio)} |`);
}
console.log("\n### Time of the whole state round trip (ms)\n");
console.log("| cache | prompt | llama.cpp save | llama.cpp load | kvcomp compress (CLI + server) | " +
    "kvcomp decompress (CLI + server) | lossless codec in process: compress / decompress |");
console.log("|---|---|---|---|---|---|---|");
for (const r of out.lossless) {
    const a = r.results[0];
    console.log(`| ${r.cache.split(",")[0]} | ${r.prompt} | ${fmt(r.llamaSaveMs, 2)} | ${fmt(r.llamaLoadMs, 2)} | ` +
        `${fmt(a.compressMs, 1)} | ${fmt(a.decompressMs, 1)} | ${fmt(r.codecCompressMs, 2)} / ${fmt(r.codecDecompressMs, 2)} |`);
}
console.log(`\n### Fidelity, F16 cache, ${cachedTokens} cached tokens, ${continuation} judged, ` +
    `${prompts.length} prompts\n`);
console.log("| spec | KV ratio | file ratio | worst cosine | free-running agreement (min / mean) | " +
    "top-1 (mean) | mean KL | max KL |");
console.log("|---|---|---|---|---|---|---|---|");
for (const spec of lossySpecs) {
    const rs = out.fidelity.map((f) => f.results.find((r) => r.codec === spec));
    const mean = (f) => rs.reduce((a, r) => a + f(r), 0) / rs.length;
    console.log(`| \`${spec}\` | ${fmt(mean((r) => r.totals.KV.ratio))} | ${fmt(mean((r) => r.fileRatio))} | ` +
        `${fmt(Math.min(...rs.map((r) => r.worstCosine)), 5)} | ` +
        `${Math.min(...rs.map((r) => r.agree))} / ${fmt(mean((r) => r.agree), 1)} of ${continuation} | ` +
        `${fmt(mean((r) => r.top1))} | ${mean((r) => r.klMean).toExponential(2)} | ` +
        `${Math.max(...rs.map((r) => r.klMax)).toExponential(2)} |`);
}
console.log("\nPer prompt: free-running agreement (and, where it diverged, the exact cache's " +
    "top-1 minus top-2 probability at that token)\n");
console.log(`| spec | ${prompts.join(" | ")} |`);
console.log(`|---|${prompts.map(() => "---").join("|")}|`);
for (const spec of lossySpecs) {
    const cells = out.fidelity.map((f) => {
        const r = f.results.find((x) => x.codec === spec);
        return r.agree === r.tokens ? `${r.agree}` : `${r.agree} (${fmt(r.divergenceMargin, 3)})`;
    });
    console.log(`| \`${spec}\` | ${cells.join(" | ")} |`);
}
console.log(`\n### Q8_0 (padded model, ${out.q8.cells} cells, state ${out.q8.stateBytes} bytes): ` +
    "bytes after each pipeline\n");
console.log("| spec | recorded | Q8_0 block bytes | scales (raw -> coded) | quants (raw -> coded) | " +
    "other streams | headers + checksums | side record | .kvc |");
console.log("|---|---|---|---|---|---|---|---|---|");
for (const p of out.q8.pipelines) {
    const blocks = p.blocks / 34;
    const split = p.spec !== "zstd(3)";
    console.log(`| \`${p.spec}\` | ${p.recorded.join(", ")} | ${p.blocks} | ` +
        `${split ? `${blocks * 2} -> ${p.scales}` : "-"} | ${split ? `${blocks * 32} -> ${p.quants}` : "-"} | ` +
        `${p.other} | ${p.headers} | ${p.side} | ${p.kvcBytes} |`);
}
console.log(`\nresults: ${path.join(workDir, "bench-engine.json")}`);
