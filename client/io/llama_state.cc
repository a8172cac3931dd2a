#include "client/io/llama_state.h"

#include <cstring>
#include <map>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/kvcomp/internal/status_macros.h"

namespace kvcomp::io {
namespace {

// The ggml types a K/V section may hold that kvcomp reads (ggml.h's enum ggml_type).
std::optional<DType> DTypeOfGgml(int32_t type) {
  switch (type) {
    case 0:
      return DType::kFP32;
    case 1:
      return DType::kFP16;
    case 2:
      return DType::kQ4_0;
    case 8:
      return DType::kQ8_0;
    case 30:
      return DType::kBF16;
    default:
      return std::nullopt;
  }
}

std::string GgmlTypeName(int32_t type) {
  switch (type) {
    case 0:
      return "F32";
    case 1:
      return "F16";
    case 2:
      return "Q4_0";
    case 3:
      return "Q4_1";
    case 6:
      return "Q5_0";
    case 7:
      return "Q5_1";
    case 8:
      return "Q8_0";
    case 30:
      return "BF16";
    default:
      return absl::StrCat("ggml type ", type);
  }
}

// One stretch of a state file: bytes kept in the skeleton, or one layer's K or V values.
struct Section {
  bool data = false;
  uint64_t offset = 0;  // in the walked input (the file, or the skeleton for non-data sections)
  uint64_t size = 0;
  // Data sections:
  int32_t layer = 0;
  Kind kind = Kind::kKey;
  DType dtype = DType::kFP16;
  uint64_t cells = 0;
  uint64_t row_elements = 0;  // elements (blocks, for quantised types) per cell
  bool transposed = false;    // stored as row_elements rows of `cells` elements
};

struct StateLayout {
  std::vector<Section> sections;
  LlamaStateSummary summary;
};

// Walks a state file, or its skeleton (`has_data` false: the data sections take no bytes), and
// checks every field. Offsets in errors are the file's: in a skeleton they count the cut data.
class Walker {
 public:
  Walker(absl::Span<const uint8_t> in, bool has_data, absl::string_view what)
      : in_(in), has_data_(has_data), what_(what) {}

  absl::StatusOr<StateLayout> Walk() {
    uint32_t magic, version, n_tokens;
    KV_RETURN_IF_ERROR(U32("magic", &magic));
    if (magic != kLlamaStateMagic) {
      return Bad("magic", 0,
                 absl::StrFormat("is 0x%08x, not llama.cpp's sequence-state magic 0x%08x ('ggsq')",
                                 magic, kLlamaStateMagic));
    }
    KV_RETURN_IF_ERROR(U32("version", &version));
    if (version != kLlamaStateVersion) {
      return Bad("version", 4,
                 absl::StrCat("is ", version, "; kvcomp reads sequence-state version ",
                              kLlamaStateVersion));
    }
    KV_RETURN_IF_ERROR(U32("n_token_count", &n_tokens));
    if (n_tokens > remaining() / 4) {
      return Bad("n_token_count", 8,
                 absl::StrCat("is ", n_tokens, ", but only ", remaining(),
                              " bytes follow for its 4-byte tokens"));
    }
    Skip(uint64_t{4} * n_tokens);
    layout_.summary.tokens = n_tokens;
    uint32_t n_stream;
    const uint64_t stream_at = file_pos();
    KV_RETURN_IF_ERROR(U32("n_stream", &n_stream));
    if (n_stream == 0 || n_stream > remaining() / 4) {
      return Bad("n_stream", stream_at,
                 absl::StrCat("is ", n_stream, ", with ", remaining(), " bytes left"));
    }
    layout_.summary.streams = n_stream;
    bool seen_cells = false;
    for (uint32_t s = 0; s < n_stream; ++s) {
      uint32_t cells;
      const uint64_t at = file_pos();
      KV_RETURN_IF_ERROR(U32("cell_count", &cells));
      if (cells == 0) continue;
      if (seen_cells) {
        return Bad(
            absl::StrCat("cell_count of stream ", s), at,
            absl::StrCat("is ", cells, ": kvcomp reads states whose cells are all in one stream"));
      }
      seen_cells = true;
      KV_RETURN_IF_ERROR(CellStream(cells));
    }
    if (remaining() != 0) {
      return Bad("end of the cache", file_pos(),
                 absl::StrCat(remaining(),
                              " bytes follow the last section (the state of a model with a second "
                              "cache, e.g. sliding-window or recurrent layers, which kvcomp does "
                              "not read)"));
    }
    Flush();
    layout_.summary.skeleton_bytes = skeleton_bytes_;
    layout_.summary.file_bytes = file_pos();
    return std::move(layout_);
  }

 private:
  absl::Status CellStream(uint32_t cells) {
    layout_.summary.cells = cells;
    if (cells > remaining() / 8) {
      return Bad("cell_count", file_pos() - 4,
                 absl::StrCat("is ", cells, ", but only ", remaining(),
                              " bytes follow for cells of at least 8 bytes"));
    }
    for (uint32_t c = 0; c < cells; ++c) {
      int32_t pos;
      uint32_t n_seq;
      KV_RETURN_IF_ERROR(I32("pos", &pos));
      const uint64_t at = file_pos();
      KV_RETURN_IF_ERROR(U32("n_seq_id", &n_seq));
      // llama.cpp keeps at most LLAMA_MAX_SEQ (256) sequences per cell.
      if (n_seq > 256 || n_seq > remaining() / 4) {
        return Bad(absl::StrCat("n_seq_id of cell ", c), at,
                   absl::StrCat("is ", n_seq,
                                " (at most 256; a model with per-cell extras, such as M-RoPE's "
                                "positions, writes fields kvcomp does not read)"));
      }
      Skip(uint64_t{4} * n_seq);
    }
    uint32_t v_trans, n_layer;
    const uint64_t v_trans_at = file_pos();
    KV_RETURN_IF_ERROR(U32("v_trans", &v_trans));
    if (v_trans > 1) {
      return Bad("v_trans", v_trans_at,
                 absl::StrCat("is ", v_trans,
                              ", not 0 or 1 (a model with per-cell extras, such as M-RoPE's "
                              "positions, writes fields kvcomp does not read)"));
    }
    const uint64_t n_layer_at = file_pos();
    KV_RETURN_IF_ERROR(U32("n_layer", &n_layer));
    if (n_layer == 0 || n_layer > remaining() / 12) {
      return Bad("n_layer", n_layer_at,
                 absl::StrCat("is ", n_layer, ", with ", remaining(),
                              " bytes left for sections of at least 12 bytes each"));
    }
    layout_.summary.v_trans = v_trans;
    layout_.summary.layers = n_layer;
    for (uint32_t l = 0; l < n_layer; ++l) KV_RETURN_IF_ERROR(RowSection(Kind::kKey, l, cells));
    for (uint32_t l = 0; l < n_layer; ++l) {
      KV_RETURN_IF_ERROR(v_trans ? TransposedSection(l, cells)
                                 : RowSection(Kind::kValue, l, cells));
    }
    return absl::OkStatus();
  }

  // i32 ggml type; the dtype it maps to, or an error naming it.
  absl::StatusOr<DType> Type(Kind kind, uint32_t layer) {
    int32_t type;
    const uint64_t at = file_pos();
    const std::string field = absl::StrCat(KindName(kind), " type of layer ", layer);
    KV_RETURN_IF_ERROR(I32(field, &type));
    std::optional<DType> dtype = DTypeOfGgml(type);
    if (!dtype) {
      return Bad(field, at,
                 absl::StrCat("is ", GgmlTypeName(type),
                              ", which kvcomp does not read (F32, F16, BF16, Q8_0, Q4_0)"));
    }
    return *dtype;
  }

  absl::Status RowSection(Kind kind, uint32_t layer, uint32_t cells) {
    KV_ASSIGN_OR_RETURN(DType dtype, Type(kind, layer));
    uint64_t row_bytes;
    const uint64_t at = file_pos();
    const std::string field = absl::StrCat(KindName(kind), " row size of layer ", layer);
    KV_RETURN_IF_ERROR(U64(field, &row_bytes));
    const size_t es = DTypeSize(dtype);
    if (row_bytes == 0 || row_bytes % es != 0) {
      return Bad(field, at,
                 absl::StrCat("is ", row_bytes, " bytes, not a whole number of ", DTypeName(dtype),
                              " elements (", es, " bytes each)"));
    }
    return Data(field, at, kind, layer, dtype, cells, row_bytes / es, false);
  }

  absl::Status TransposedSection(uint32_t layer, uint32_t cells) {
    KV_ASSIGN_OR_RETURN(DType dtype, Type(Kind::kValue, layer));
    uint32_t element_bytes, n_embd;
    const uint64_t el_at = file_pos();
    const std::string el_field = absl::StrCat("V element size of layer ", layer);
    KV_RETURN_IF_ERROR(U32(el_field, &element_bytes));
    if (IsBlockQuantized(dtype)) {
      return Bad(el_field, el_at,
                 absl::StrCat("follows a ", DTypeName(dtype),
                              " V with v_trans 1: llama.cpp keeps a quantised V untransposed "
                              "(flash attention), so the file is inconsistent"));
    }
    if (element_bytes != DTypeSize(dtype)) {
      return Bad(el_field, el_at,
                 absl::StrCat("is ", element_bytes, ", but a ", DTypeName(dtype), " element is ",
                              DTypeSize(dtype), " bytes"));
    }
    const uint64_t n_at = file_pos();
    const std::string n_field = absl::StrCat("V n_embd_v_gqa of layer ", layer);
    KV_RETURN_IF_ERROR(U32(n_field, &n_embd));
    if (n_embd == 0) return Bad(n_field, n_at, "is 0");
    return Data(n_field, n_at, Kind::kValue, layer, dtype, cells, n_embd, true);
  }

  // The values of one layer's K or V: `cells` x `row_elements` elements of `dtype`.
  absl::Status Data(absl::string_view field, uint64_t field_at, Kind kind, uint32_t layer,
                    DType dtype, uint32_t cells, uint64_t row_elements, bool transposed) {
    const uint64_t es = DTypeSize(dtype);
    const uint64_t limit = has_data_ ? remaining() : (uint64_t{1} << 48);
    if (row_elements > limit / es / cells) {
      return Bad(field, field_at,
                 absl::StrCat("makes ", cells, " cells of ", row_elements * es,
                              " bytes, more than the ", remaining(), " bytes left (truncated?)"));
    }
    Flush();
    Section s;
    s.data = true;
    s.offset = pos_;
    s.size = uint64_t{cells} * row_elements * es;
    s.layer = static_cast<int32_t>(layer);
    s.kind = kind;
    s.dtype = dtype;
    s.cells = cells;
    s.row_elements = row_elements;
    s.transposed = transposed;
    layout_.sections.push_back(s);
    if (has_data_) pos_ += s.size;
    cut_ += has_data_ ? 0 : s.size;
    kept_from_ = pos_;
    return absl::OkStatus();
  }

  // Closes the run of skeleton bytes since the last data section.
  void Flush() {
    if (pos_ == kept_from_) return;
    Section s;
    s.offset = kept_from_;
    s.size = pos_ - kept_from_;
    skeleton_bytes_ += s.size;
    layout_.sections.push_back(s);
    kept_from_ = pos_;
  }

  uint64_t remaining() const { return in_.size() - pos_; }
  uint64_t file_pos() const { return pos_ + cut_; }
  void Skip(uint64_t n) { pos_ += n; }

  absl::Status Need(absl::string_view field, uint64_t n) {
    if (remaining() >= n) return absl::OkStatus();
    return Bad(field, file_pos(),
               absl::StrCat("needs ", n, " bytes, but the ", has_data_ ? "file" : "skeleton",
                            " ends ", remaining(), " bytes later (truncated)"));
  }
  uint64_t Load(size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(in_[pos_ + i]) << (8 * i);
    pos_ += n;
    return v;
  }
  absl::Status U32(absl::string_view field, uint32_t* v) {
    KV_RETURN_IF_ERROR(Need(field, 4));
    *v = static_cast<uint32_t>(Load(4));
    return absl::OkStatus();
  }
  absl::Status I32(absl::string_view field, int32_t* v) {
    uint32_t u;
    KV_RETURN_IF_ERROR(U32(field, &u));
    *v = static_cast<int32_t>(u);
    return absl::OkStatus();
  }
  absl::Status U64(absl::string_view field, uint64_t* v) {
    KV_RETURN_IF_ERROR(Need(field, 8));
    *v = Load(8);
    return absl::OkStatus();
  }

  absl::Status Bad(absl::string_view field, uint64_t offset, absl::string_view detail) const {
    return absl::InvalidArgumentError(
        absl::StrCat(what_, ": not a llama.cpp sequence state kvcomp can read: ", field,
                     " at byte offset ", offset, " ", detail));
  }

  absl::Span<const uint8_t> in_;
  bool has_data_;
  std::string what_;
  uint64_t pos_ = 0;
  uint64_t cut_ = 0;        // data bytes a skeleton leaves out before pos_
  uint64_t kept_from_ = 0;  // start of the skeleton bytes not yet in a section
  uint64_t skeleton_bytes_ = 0;
  StateLayout layout_;
};

std::string TensorName(const Section& s) { return CanonicalTensorName(s.layer, s.kind, 0); }

// [rows, cols] elements of `ES` bytes -> [cols, rows]: a transposed V to token-major and back.
template <size_t ES>
void TransposeAs(const uint8_t* in, uint64_t rows, uint64_t cols, uint8_t* out) {
  for (uint64_t r = 0; r < rows; ++r) {
    for (uint64_t c = 0; c < cols; ++c) {
      std::memcpy(out + (c * rows + r) * ES, in + (r * cols + c) * ES, ES);
    }
  }
}

// Transposed sections hold float types only (F32, F16, BF16): quantised ones are refused.
void Transpose(const uint8_t* in, uint64_t rows, uint64_t cols, size_t es, uint8_t* out) {
  (es == 4 ? TransposeAs<4> : TransposeAs<2>)(in, rows, cols, out);
}

}  // namespace

bool HasLlamaStateMagic(absl::Span<const uint8_t> head) {
  if (head.size() < 4) return false;
  uint32_t magic;
  std::memcpy(&magic, head.data(), 4);
  return magic == kLlamaStateMagic;
}

std::string LlamaStateSummary::ToString() const {
  return absl::StrCat(tokens, " tokens, ", cells, " cells, ", layers, " layers, v_trans ", v_trans,
                      ", ", file_bytes, " bytes (", skeleton_bytes, " not K/V values)");
}

absl::StatusOr<LlamaState> ParseLlamaState(absl::Span<const uint8_t> file, absl::string_view what) {
  KV_ASSIGN_OR_RETURN(StateLayout layout, Walker(file, true, what).Walk());
  LlamaState state;
  state.summary = layout.summary;
  state.skeleton.reserve(layout.summary.skeleton_bytes);
  for (const Section& s : layout.sections) {
    const uint8_t* src = file.data() + s.offset;
    if (!s.data) {
      state.skeleton.insert(state.skeleton.end(), src, src + s.size);
      continue;
    }
    NamedTensor t;
    t.name = TensorName(s);
    t.tensor.meta.dtype = s.dtype;
    t.tensor.meta.layout = Layout::kTokenMajor;
    t.tensor.meta.kind = s.kind;
    t.tensor.meta.layer = s.layer;
    t.tensor.meta.shape = {static_cast<int64_t>(s.cells), static_cast<int64_t>(s.row_elements)};
    if (s.transposed) {
      t.tensor.bytes.resize(s.size);
      Transpose(src, s.row_elements, s.cells, DTypeSize(s.dtype), t.tensor.bytes.data());
    } else {
      t.tensor.bytes.assign(src, src + s.size);
    }
    state.tensors.push_back(std::move(t));
  }
  return state;
}

absl::StatusOr<LlamaState> ReadLlamaStateFile(const std::string& path) {
  KV_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, ReadFileBytes(path));
  return ParseLlamaState(bytes, path);
}

absl::StatusOr<LlamaStateSummary> SummarizeLlamaSkeleton(absl::Span<const uint8_t> skeleton) {
  KV_ASSIGN_OR_RETURN(StateLayout layout,
                      Walker(skeleton, false, "llama.cpp state skeleton").Walk());
  return layout.summary;
}

absl::Status AssembleLlamaState(absl::Span<const uint8_t> skeleton, const KvCache& tensors,
                                Sink& out) {
  KV_ASSIGN_OR_RETURN(StateLayout layout,
                      Walker(skeleton, false, "llama.cpp state skeleton").Walk());
  std::map<std::pair<int32_t, Kind>, const NamedTensor*> by_place;
  for (const NamedTensor& t : tensors) {
    const TensorMeta& m = t.tensor.meta;
    if (!by_place.emplace(std::make_pair(m.layer, m.kind), &t).second) {
      return absl::InvalidArgumentError(absl::StrCat("two tensors are layer ", m.layer, " ",
                                                     KindName(m.kind), " ('", t.name, "')"));
    }
  }
  size_t used = 0;
  std::vector<uint8_t> transposed;
  for (const Section& s : layout.sections) {
    if (!s.data) {
      KV_RETURN_IF_ERROR(out.Write(skeleton.subspan(s.offset, s.size)));
      continue;
    }
    auto it = by_place.find({s.layer, s.kind});
    const std::string want =
        absl::StrCat(DTypeName(s.dtype), " [", s.cells, ",", s.row_elements, "] token-major");
    if (it == by_place.end()) {
      return absl::InvalidArgumentError(absl::StrCat("the state needs ", TensorName(s), " (", want,
                                                     "), which is not among the tensors"));
    }
    const Tensor& t = it->second->tensor;
    const std::vector<int64_t> shape = {static_cast<int64_t>(s.cells),
                                        static_cast<int64_t>(s.row_elements)};
    if (t.meta.dtype != s.dtype || t.meta.shape != shape || t.meta.layout != Layout::kTokenMajor ||
        t.bytes.size() != s.size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor '", it->second->name, "' is ", DTypeName(t.meta.dtype), " ", t.meta.ShapeString(),
          " ", LayoutName(t.meta.layout), ", but the state holds ", want,
          " there (kvcomp writes values back in the cache's own type and shape)"));
    }
    ++used;
    if (!s.transposed) {
      KV_RETURN_IF_ERROR(out.Write(t.bytes));
      continue;
    }
    transposed.resize(s.size);
    Transpose(t.bytes.data(), s.cells, s.row_elements, DTypeSize(s.dtype), transposed.data());
    KV_RETURN_IF_ERROR(out.Write(transposed));
  }
  if (used != by_place.size()) {
    for (const NamedTensor& t : tensors) {
      bool placed = false;
      for (const Section& s : layout.sections) {
        placed |= s.data && s.layer == t.tensor.meta.layer && s.kind == t.tensor.meta.kind;
      }
      if (!placed) {
        return absl::InvalidArgumentError(
            absl::StrCat("tensor '", t.name, "' has no place in the state (it has ",
                         layout.summary.layers, " layers of K and V)"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status WriteLlamaStateFile(const std::string& path, absl::Span<const uint8_t> skeleton,
                                 const KvCache& tensors, bool overwrite) {
  if (IsDirectory(path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path,
        " is a directory: these tensors come from a llama.cpp sequence state, which is written "
        "back as a state file (or name a .npz, .npy or .safetensors file for the tensors alone)"));
  }
  if (PathExists(path) && !overwrite) {
    return absl::AlreadyExistsError(
        absl::StrCat(path, " already exists (pass --force to replace it)"));
  }
  return WriteFileAtomic(path,
                         [&](Sink& sink) { return AssembleLlamaState(skeleton, tensors, sink); });
}

}  // namespace kvcomp::io
