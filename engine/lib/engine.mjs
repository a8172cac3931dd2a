// llama.cpp (through node-llama-cpp) as kvcomp's engine: run a prompt, save the sequence state,
// load a state into a fresh context, and judge a restored cache by what the model does with it.
//
// Every context runs on one thread: ggml's worker threads spin while they wait, and on a busy
// 2-core machine two spinning workers took ~3 s per token of this 260K-parameter model instead
// of ~3 ms.
import fs from "node:fs";
import path from "node:path";
import {fileURLToPath} from "node:url";
import {getLlama} from "node-llama-cpp";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const modelsDir = process.env.KVCOMP_MODELS_DIR ?? path.resolve(repoRoot, "../shared/models");
// stories260K has head_dim 8; its head_dim-32 twin writes the same text and is the one that
// ggml's quantised KV types (block size 32) can hold (../shared/models/README.md).
export const models = {
    plain: path.join(modelsDir, "stories260K-f32.gguf"),
    pad32: path.join(modelsDir, "stories260K-pad32-f32.gguf"),
};
export const quantisedKvTypes = new Set(["Q8_0", "Q4_0"]);

let llamaPromise;
const modelCache = new Map();

export async function loadModel(modelPath) {
    llamaPromise ??= getLlama({gpu: false, build: "never", logLevel: "error"});
    const llama = await llamaPromise;
    if (!modelCache.has(modelPath)) modelCache.set(modelPath, llama.loadModel({modelPath}));
    return modelCache.get(modelPath);
}

// A cache configuration: KV types and flash attention (off stores V transposed: v_trans 1).
export function describeCache({kType, vType, flashAttention}) {
    return `K ${kType} / V ${vType}, flash attention ${flashAttention ? "on" : "off"}`;
}

export function modelFor({kType, vType}) {
    return quantisedKvTypes.has(kType) || quantisedKvTypes.has(vType) ? models.pad32 : models.plain;
}

export async function createContext(model, {kType = "F16", vType = "F16", flashAttention = false,
    contextSize = 512} = {}) {
    return model.createContext({
        contextSize, sequences: 1, threads: 1, flashAttention,
        experimentalKvCacheKeyType: kType, experimentalKvCacheValueType: vType,
    });
}

// The tokens of `prompt` (BOS first), extended greedily to `cachedTokens` + 1 tokens. The
// cache is to hold the first `cachedTokens`; the last one is the first input after a restore
// (a state file keeps no logits, so the model needs one token to predict from).
export async function promptTokens(model, cache, prompt, cachedTokens) {
    const tokens = model.tokenize(prompt, true);
    if (tokens.length > cachedTokens + 1) {
        throw new Error(`prompt "${prompt}" is ${tokens.length} tokens, more than ${cachedTokens + 1}`);
    }
    if (tokens.length === cachedTokens + 1) return tokens;
    const ctx = await createContext(model, cache);
    try {
        const seq = ctx.getSequence();
        for await (const t of seq.evaluate(tokens, {temperature: 0})) {
            tokens.push(t);
            if (tokens.length === cachedTokens + 1) break;
        }
    } finally {
        await ctx.dispose();
    }
    return tokens;
}

// Evaluates tokens[0 .. n-1) into a fresh context and saves its state to `statePath`. Returns
// the context (uninterrupted, for the reference run) and llama.cpp's save time.
export async function prefillAndSave(model, cache, tokens, statePath) {
    const ctx = await createContext(model, cache);
    const seq = ctx.getSequence();
    await seq.evaluateWithoutGeneratingNewTokens(tokens.slice(0, -1));
    const t0 = performance.now();
    await seq.saveStateToFile(statePath);
    const saveMs = performance.now() - t0;
    return {ctx, seq, saveMs};
}

// A fresh context holding the state at `statePath`. `refeedLast` erases its last cell, for a
// state that holds every token so far: that token is fed again to get the next distribution.
export async function restore(model, cache, statePath, {refeedLast = false} = {}) {
    const ctx = await createContext(model, cache);
    const seq = ctx.getSequence();
    const t0 = performance.now();
    await seq.loadStateFromFile(statePath, {acceptRisk: true});
    const loadMs = performance.now() - t0;
    if (refeedLast) {
        const n = seq.nextTokenIndex;
        await seq.eraseContextTokenRanges([{start: n - 1, end: n}]);
    }
    return {ctx, seq, loadMs};
}

// Greedy decoding of `n` tokens, starting by feeding `first`.
export async function greedy(seq, first, n) {
    const out = [];
    for await (const t of seq.evaluate([first], {temperature: 0})) {
        out.push(t);
        if (out.length === n) break;
    }
    return out;
}

// Teacher forcing: feeds [first, ...reference[0 .. n-1)] in one call and returns the next-token
// distribution after each (n distributions, each a Map token -> probability).
export async function forcedDistributions(seq, first, reference) {
    const inputs = [first, ...reference.slice(0, -1)];
    const out = await seq.controlledEvaluate(inputs.map((t) => [t, {generateNext: {probabilities: true}}]));
    return inputs.map((_, i) => {
        const p = out[i]?.next?.probabilities;
        if (!p) throw new Error(`controlledEvaluate returned no probabilities at position ${i}`);
        return p;
    });
}

function argmax(p) {
    let best = -1, bestP = -1;
    for (const [t, v] of p) if (v > bestP || (v === bestP && t < best)) best = t, bestP = v;
    return best;
}

// KL(p || q) in nats over p's support; q's zeros are floored so a vanished token counts large
// but finite.
function kl(p, q) {
    let sum = 0;
    for (const [t, pv] of p) {
        if (pv <= 0) continue;
        sum += pv * Math.log(pv / Math.max(q.get(t) ?? 0, 1e-12));
    }
    return Math.max(sum, 0);
}

function sameDistribution(p, q) {
    if (p.size !== q.size) return false;
    for (const [t, v] of p) if (q.get(t) !== v) return false;
    return true;
}

// The restored cache against the exact one:
//  - free running: the restored context's greedy tokens that agree with the reference
//    continuation before the first divergence;
//  - teacher forced: at each position of the reference continuation, the restored and the
//    exact cache's next-token distributions (both computed the same way, in one batch):
//    top-1 agreement, mean and max KL(exact || restored), and whether they are identical.
export async function judge({model, cache, tokens, exactState, restoredState, reference,
    refeedLast = false}) {
    const first = tokens[tokens.length - 1];
    const n = reference.length;
    const free = await restore(model, cache, restoredState, {refeedLast});
    let generated;
    try {
        generated = await greedy(free.seq, first, n);
    } finally {
        await free.ctx.dispose();
    }
    let agree = 0;
    while (agree < n && generated[agree] === reference[agree]) ++agree;
    const dists = [];
    for (const state of [exactState, restoredState]) {
        const r = await restore(model, cache, state, {refeedLast});
        try {
            dists.push(await forcedDistributions(r.seq, first, reference));
        } finally {
            await r.ctx.dispose();
        }
    }
    const [exact, restored] = dists;
    let top1 = 0, klSum = 0, klMax = 0, identical = true;
    for (let i = 0; i < n; ++i) {
        if (argmax(exact[i]) === argmax(restored[i])) ++top1;
        const d = kl(exact[i], restored[i]);
        klSum += d;
        klMax = Math.max(klMax, d);
        identical &&= sameDistribution(exact[i], restored[i]);
    }
    // How close a call the first divergence was: the exact cache's top-1 minus top-2
    // probability there (a near tie flips under the smallest perturbation).
    let divergenceMargin = null;
    if (agree < n) {
        const [a, b] = [...exact[agree].values()].sort((x, y) => y - x);
        divergenceMargin = a - (b ?? 0);
    }
    return {
        tokens: n, freeRunningAgree: agree, generated, divergenceMargin,
        top1: top1 / n, klMean: klSum / n, klMax, identicalDistributions: identical,
        restoreLoadMs: free.loadMs,
    };
}

export function sameFileBytes(a, b) {
    return Buffer.compare(fs.readFileSync(a), fs.readFileSync(b)) === 0;
}
