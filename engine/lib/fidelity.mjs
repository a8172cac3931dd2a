// One fidelity case: a prompt run into a fresh llama.cpp context, its state saved, then for each
// spec the state compressed and restored through a real kvcomp-server and judged by the model.
import fs from "node:fs";
import path from "node:path";
import {greedy, judge, loadModel, modelFor, prefillAndSave, promptTokens, restore,
    sameFileBytes} from "./engine.mjs";
import {roundTrip} from "./kvcomp.mjs";

// cache: {kType, vType, flashAttention}; cachedTokens cells in the saved state; the reference
// continuation is `continuation` greedy tokens of the uninterrupted context.
export async function runCase({server, cache, prompt, cachedTokens, continuation, specs, workDir}) {
    const model = await loadModel(modelFor(cache));
    const tokens = await promptTokens(model, cache, prompt, cachedTokens);
    fs.mkdirSync(workDir, {recursive: true});
    const exact = path.join(workDir, "exact.state");
    const run = await prefillAndSave(model, cache, tokens, exact);
    let reference;
    try {
        reference = await greedy(run.seq, tokens[tokens.length - 1], continuation);
    } finally {
        await run.ctx.dispose();
    }
    // llama.cpp's own load time, on the exact state (the judge loads restored ones).
    const loaded = await restore(model, cache, exact);
    await loaded.ctx.dispose();
    const results = [];
    for (const spec of specs) {
        const tag = spec.replace(/[^A-Za-z0-9.=_-]+/g, "_");
        const kvc = path.join(workDir, `${tag}.kvc`), restored = path.join(workDir, `${tag}.state`);
        const trip = roundTrip(server, spec, exact, kvc, restored);
        const verdict = await judge({model, cache, tokens, exactState: exact, restoredState: restored,
            reference});
        results.push({...trip, byteIdentical: sameFileBytes(exact, restored), ...verdict});
    }
    return {
        cache, prompt, cells: tokens.length - 1, stateBytes: fs.statSync(exact).size,
        llamaSaveMs: run.saveMs, llamaLoadMs: loaded.loadMs, reference, results,
    };
}
