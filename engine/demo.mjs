// The last step of `make demo`: one engine round trip. llama.cpp runs a prompt and saves its
// sequence state; the state goes through the demo's kvcomp-server and back; a fresh context
// loads it and continues, and the continuation is shown beside the uninterrupted one.
//
//   node engine/demo.mjs --server HOST:PORT --cli KVCOMP --dir WORK_DIR
import {execFileSync} from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import {parseArgs} from "node:util";
import {greedy, judge, loadModel, modelFor, prefillAndSave, promptTokens,
    sameFileBytes} from "./lib/engine.mjs";

const {values} = parseArgs({options: {server: {type: "string"}, cli: {type: "string"},
    dir: {type: "string"}}});
const cache = {kType: "F16", vType: "F16", flashAttention: false};
const prompt = "Once upon a time", cachedTokens = 100, continuation = 40;
fs.mkdirSync(values.dir, {recursive: true});
const [state, kvc, restored] = ["prompt.state", "prompt.kvc", "restored.state"]
    .map((f) => path.join(values.dir, f));

const model = await loadModel(modelFor(cache));
const tokens = await promptTokens(model, cache, prompt, cachedTokens);
const run = await prefillAndSave(model, cache, tokens, state);
const reference = await greedy(run.seq, tokens[tokens.length - 1], continuation);
await run.ctx.dispose();
console.log(`llama.cpp (node-llama-cpp, ${path.basename(modelFor(cache))}, K/V F16): ` +
    `${cachedTokens} tokens of "${prompt}..." in the cache, state saved: ` +
    `${fs.statSync(state).size} bytes in ${run.saveMs.toFixed(2)} ms`);
const kvcomp = (args) => execFileSync(values.cli, [...args, "--server", values.server],
    {stdio: ["ignore", "inherit", "inherit"]});
kvcomp(["compress", state, "-o", kvc, "--codec", "lossless"]);
kvcomp(["decompress", kvc, "-o", restored]);
const v = await judge({model, cache, tokens, exactState: state, restoredState: restored, reference});
const text = (t) => JSON.stringify(model.detokenize(t));
console.log(`restored state byte-identical to the saved one: ${sameFileBytes(state, restored) ? "yes" : "NO"}`);
console.log(`uninterrupted run continues: ${text(reference)}`);
console.log(`restored cache continues:    ${text(v.generated)}`);
const match = v.freeRunningAgree === continuation && v.identicalDistributions;
console.log(`match: ${match ? "yes" : "NO"} (${v.freeRunningAgree}/${continuation} greedy tokens; ` +
    `next-token distributions ${v.identicalDistributions ? "identical" : "differ"} at every position)`);
process.exit(match ? 0 : 1);
