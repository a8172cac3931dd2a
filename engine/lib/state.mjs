// What the engine needs from a llama.cpp sequence-state file before loading it: its tokens, cell
// count, v_trans and the KV types, to create a context that accepts it. The full reader, with
// every check, is the client's (client/io/llama_state.h); this one reads the header fields the
// same way and refuses what it does not follow.
const ggmlTypes = {0: "F32", 1: "F16", 2: "Q4_0", 8: "Q8_0", 30: "BF16"};

export function readStateHeader(buf) {
    let pos = 0;
    const u32 = () => {
        if (pos + 4 > buf.length) throw new Error(`state truncated at byte ${pos}`);
        const v = buf.readUInt32LE(pos);
        pos += 4;
        return v;
    };
    if (u32() !== 0x67677371 || u32() !== 3) throw new Error("not a llama.cpp sequence state (ggsq v3)");
    const nTokens = u32();
    const tokens = [];
    for (let i = 0; i < nTokens; ++i) tokens.push(u32() | 0);
    const nStream = u32();
    let cells = 0;
    for (let s = 0; s < nStream && cells === 0; ++s) cells = u32();
    if (cells === 0) return {tokens, cells: 0};
    for (let c = 0; c < cells; ++c) {
        u32();  // pos
        const nSeq = u32();
        pos += 4 * nSeq;  // seq ids
    }
    const vTrans = u32(), nLayer = u32();
    if (vTrans > 1) throw new Error(`v_trans ${vTrans}: a state kvcomp does not read`);
    const type = (t) => {
        if (!(t in ggmlTypes)) throw new Error(`ggml type ${t}: a state kvcomp does not read`);
        return ggmlTypes[t];
    };
    const kType = type(u32());
    pos += 8 + cells * Number(buf.readBigUInt64LE(pos));  // layer 0's row size and rows
    for (let l = 1; l < nLayer; ++l) {
        pos += 4;
        pos += 8 + cells * Number(buf.readBigUInt64LE(pos));
    }
    const vType = type(u32());
    return {tokens, cells, vTrans, nLayer, kType, vType};
}
