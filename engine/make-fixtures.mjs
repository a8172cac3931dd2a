// Writes the llama.cpp sequence-state files the C++ and Python tests read
// (tests/data/llama_state/), each saved by llama.cpp itself, and their manifest.
//
//   node engine/make-fixtures.mjs [OUT_DIR]
//
// Every variant llama.cpp writes: KV types F32, F16, BF16, Q8_0 and Q4_0, K and V of different
// types, v_trans 0 (flash attention on) and 1 (off), and cell counts from 0 to a few dozen.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import {createContext, loadModel, modelFor, models, promptTokens, repoRoot} from "./lib/engine.mjs";

const outDir = process.argv[2] ?? path.join(repoRoot, "tests/data/llama_state");

// name, K type, V type, flash attention, cached tokens. The prompt is the same for all, so
// two files of one model and type differ only in what the variant changes.
const variants = [
    ["f16-vtrans1", "F16", "F16", false, 24],
    ["f16-vtrans0", "F16", "F16", true, 24],
    ["f32-vtrans0", "F32", "F32", true, 17],
    ["f32-vtrans1", "F32", "F32", false, 9],
    ["bf16-vtrans1", "BF16", "BF16", false, 31],
    ["bf16k-f32v-vtrans0", "BF16", "F32", true, 12],
    ["f16k-bf16v-vtrans1", "F16", "BF16", false, 13],
    ["q8_0-vtrans0", "Q8_0", "Q8_0", true, 20],
    ["q8_0k-f16v-vtrans1", "Q8_0", "F16", false, 11],
    ["q4_0-vtrans0", "Q4_0", "Q4_0", true, 16],
    ["q4_0k-q8_0v-vtrans0", "Q4_0", "Q8_0", true, 7],
    ["f16-one-cell", "F16", "F16", false, 1],
    ["f16-no-cells", "F16", "F16", false, 0],
];
const prompt = "Once upon a time";

fs.mkdirSync(outDir, {recursive: true});
const manifest = {
    writer: "llama.cpp of node-llama-cpp " +
        JSON.parse(fs.readFileSync(path.join(repoRoot, "engine/node_modules/node-llama-cpp/package.json"))).version,
    prompt, files: [],
};
for (const [name, kType, vType, flashAttention, cached] of variants) {
    const cache = {kType, vType, flashAttention};
    const modelPath = modelFor(cache);
    const model = await loadModel(modelPath);
    const tokens = (await promptTokens(model, cache, prompt, Math.max(cached - 1, 3))).slice(0, cached);
    const ctx = await createContext(model, cache);
    const seq = ctx.getSequence();
    if (tokens.length) await seq.evaluateWithoutGeneratingNewTokens(tokens);
    const file = path.join(outDir, `${name}.state`);
    await seq.saveStateToFile(file);
    await ctx.dispose();
    const bytes = fs.readFileSync(file);
    manifest.files.push({
        file: `${name}.state`, model: path.basename(modelPath), kType, vType,
        vTrans: flashAttention ? 0 : 1, cells: tokens.length, tokens: tokens.length,
        bytes: bytes.length, sha256: crypto.createHash("sha256").update(bytes).digest("hex"),
    });
    console.log(`${name}: ${tokens.length} cells, ${bytes.length} bytes`);
}
fs.writeFileSync(path.join(outDir, "manifest.json"), JSON.stringify(manifest, null, 1) + "\n");
console.log(`models: ${Object.values(models).map((m) => path.basename(m)).join(", ")}`);
