// kvcomp from Node: a real kvcomp-server on 127.0.0.1 and the kvcomp CLI, as a user runs them.
import {spawn, spawnSync} from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {repoRoot} from "./engine.mjs";

export const binaries = {
    cli: process.env.KVCOMP_CLI ?? path.join(repoRoot, "build/client/kvcomp"),
    server: process.env.KVCOMP_SERVER ?? path.join(repoRoot, "build/server/kvcomp-server"),
};

// Starts kvcomp-server on an ephemeral loopback port; resolves to {address, stop()}.
export async function startServer(serverBinary = binaries.server) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kvcomp-engine-server-"));
    const ready = path.join(dir, "ready");
    const log = fs.openSync(path.join(dir, "log"), "w");
    const child = spawn(serverBinary, ["--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0",
        "--ready-file", ready],
        {stdio: ["ignore", log, log]});
    let exited = null;
    child.on("exit", (code, signal) => exited = {code, signal});
    for (let i = 0; i < 300 && exited === null; ++i) {
        const text = fs.existsSync(ready) ? fs.readFileSync(ready, "utf8") : "";
        const m = text.match(/^grpc=(\S+)$/m);
        if (m) {
            return {
                address: m[1],
                async stop() {
                    if (exited === null) {
                        const done = new Promise((r) => child.once("exit", r));
                        child.kill("SIGTERM");
                        await done;
                    }
                    fs.closeSync(log);
                    fs.rmSync(dir, {recursive: true, force: true});
                },
            };
        }
        await new Promise((r) => setTimeout(r, 50));
    }
    child.kill("SIGKILL");
    throw new Error(`kvcomp-server did not become ready: ${fs.readFileSync(path.join(dir, "log"), "utf8")}`);
}

function run(args) {
    const r = spawnSync(binaries.cli, args, {encoding: "utf8", maxBuffer: 64 << 20});
    if (r.error) throw new Error(`kvcomp ${args.join(" ")}: ${r.error.message}`);
    if (r.status !== 0) {
        throw new Error(`kvcomp ${args.join(" ")} exited ${r.status ?? r.signal}: ${r.stderr}`);
    }
    return r.stdout;
}

// The CLI's report table: per tensor (name, cosine when lossy) and the K / V / KV totals.
function parseReport(text) {
    const totals = {}, tensors = [];
    for (const line of text.split("\n")) {
        const total = line.match(/^(K|V|KV) total\s+(\d+)\s+(\d+)\s+([\d.]+)x/);
        if (total) {
            totals[total[1]] = {raw: +total[2], compressed: +total[3], ratio: +total[4]};
            continue;
        }
        const row = line.match(/^(layer\d+_[kv])\s+\d+\s+[KV]\s+\S+\s+\S+\s+(\d+)\s+(\d+)\s+([\d.]+)x\s+(\S+)/);
        if (row) {
            tensors.push({name: row[1], raw: +row[2], compressed: +row[3],
                cosine: row[5] === "exact" ? 1 : +row[5], exact: row[5] === "exact"});
        }
    }
    return {totals, tensors};
}

// STATE -> .kvc -> STATE2 through the server; the sizes, the report and the times of each step.
export function roundTrip(server, codec, statePath, kvcPath, restoredPath) {
    let t0 = performance.now();
    const report = parseReport(run(["compress", statePath, "-o", kvcPath, "--codec", codec,
        "--server", server.address, "--force"]));
    const compressMs = performance.now() - t0;
    t0 = performance.now();
    run(["decompress", kvcPath, "-o", restoredPath, "--server", server.address, "--force", "--quiet"]);
    const decompressMs = performance.now() - t0;
    const stateBytes = fs.statSync(statePath).size, kvcBytes = fs.statSync(kvcPath).size;
    const worstCosine = Math.min(1, ...report.tensors.map((t) => t.cosine));
    return {
        codec, stateBytes, kvcBytes, fileRatio: stateBytes / kvcBytes, totals: report.totals,
        worstCosine, exact: report.tensors.every((t) => t.exact), compressMs, decompressMs,
    };
}
