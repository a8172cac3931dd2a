// The wire conversions server and client share (kvcomp/v1/convert.h), and the client's reading
// of a reply through them: an unknown kind, layout or datatype is refused, never defaulted.
// No server.
#include "proto/kvcomp/v1/convert.h"

#include <gtest/gtest.h>

#include "client/kvcomp_client.h"
#include "core/kvcomp/catalogue.h"

namespace kvcomp {
namespace {

v1::Tensor SmallTensor() {
  Tensor t;
  t.meta.dtype = DType::kFP16;
  t.meta.layer = 4;
  t.meta.kind = Kind::kValue;
  t.meta.layout = Layout::kTokenMajor;
  t.meta.shape = {3, 2, 2};
  t.bytes.assign(t.meta.NumBytes(), 0x3c);
  v1::Tensor out;
  proto::TensorToProto(t, "layer4_v", &out);
  return out;
}

v1::TensorReport SmallReport() {
  TensorReport r;
  r.meta.dtype = DType::kBF16;
  r.meta.layer = 2;
  r.meta.kind = Kind::kKey;
  r.meta.shape = {8, 16, 64};
  r.raw_bytes = 16384;
  r.compressed_bytes = 4096;
  r.spec = "uquant(bits=4)+rans";
  r.lossless = false;
  r.error = ErrorStats{.mae = 0.5,
                       .rel_mae = 0.1,
                       .max_abs = 2,
                       .rmse = 0.7,
                       .rel_rmse = 0.2,
                       .cosine = 0.99,
                       .snr_db = 30};
  v1::TensorReport out;
  proto::ReportToProto(r, "layer2_k", &out);
  return out;
}

TEST(ConvertTest, TensorRoundTrips) {
  const v1::Tensor wire = SmallTensor();
  EXPECT_EQ(wire.kind(), v1::TENSOR_KIND_V);
  EXPECT_EQ(wire.layout(), v1::TENSOR_LAYOUT_TOKEN_MAJOR);
  EXPECT_EQ(wire.datatype(), "FP16");
  absl::StatusOr<TensorView> view = proto::ViewFromProto(wire);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->meta().layer, 4);
  EXPECT_EQ(view->meta().kind, Kind::kValue);
  EXPECT_EQ(view->meta().layout, Layout::kTokenMajor);
  EXPECT_EQ(view->meta().shape, (std::vector<int64_t>{3, 2, 2}));
  EXPECT_EQ(view->bytes().size(), 24u);

  absl::StatusOr<io::NamedTensor> read = client::FromProto(wire);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->name, "layer4_v");
  EXPECT_EQ(read->tensor.meta.layout, Layout::kTokenMajor);
  v1::Tensor again;
  client::ToProto(*read, &again);
  EXPECT_EQ(again.SerializeAsString(), wire.SerializeAsString());
}

TEST(ConvertTest, ReportRoundTrips) {
  v1::TensorReport wire = SmallReport();
  EXPECT_DOUBLE_EQ(wire.ratio(), 4.0);
  wire.set_compress_seconds(0.25);
  absl::StatusOr<client::TensorReport> r = client::ReportFromProto(wire);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->name, "layer2_k");
  EXPECT_EQ(r->layer, 2);
  EXPECT_EQ(r->kind, Kind::kKey);
  EXPECT_EQ(r->dtype, DType::kBF16);
  EXPECT_EQ(r->shape, (std::vector<int64_t>{8, 16, 64}));
  EXPECT_EQ(r->raw_bytes, 16384u);
  EXPECT_EQ(r->compressed_bytes, 4096u);
  EXPECT_DOUBLE_EQ(r->ratio, 4.0);
  EXPECT_EQ(r->codec, "uquant(bits=4)+rans");
  EXPECT_FALSE(r->lossless);
  ASSERT_TRUE(r->error.has_value());
  EXPECT_DOUBLE_EQ(r->error->cosine, 0.99);
  EXPECT_DOUBLE_EQ(r->error->snr_db, 30);
  EXPECT_DOUBLE_EQ(r->error->max_abs, 2);
  EXPECT_DOUBLE_EQ(r->compress_seconds, 0.25);

  wire.set_lossless(true);  // a lossless report's error is not read
  r = client::ReportFromProto(wire);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->error.has_value());
}

TEST(ConvertTest, UnknownEnumValuesAndDatatypesAreRefused) {
  for (int kind : {0, 1, 2}) EXPECT_TRUE(proto::KindFromProto(kind).ok()) << kind;
  for (int layout : {0, 1}) EXPECT_TRUE(proto::LayoutFromProto(layout).ok()) << layout;
  EXPECT_EQ(proto::KindFromProto(7).status(), absl::InvalidArgumentError("unknown tensor kind 7"));
  EXPECT_EQ(proto::KindFromProto(-1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(proto::LayoutFromProto(9).status(),
            absl::InvalidArgumentError("unknown tensor layout 9"));
  absl::Status dtype = proto::DTypeFromProto("FP8").status();
  EXPECT_EQ(dtype.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(dtype.message().find("unknown datatype 'FP8'"), std::string::npos) << dtype;
  EXPECT_FALSE(proto::DTypeFromProto("").ok());  // not FP16 by default
}

// What a server may not send, each refused by the client: DATA_LOSS, naming the tensor and why.
TEST(ConvertTest, ClientRefusesAReplyWithAnUnknownKindLayoutOrDatatype) {
  struct Case {
    const char* what;
    void (*spoil)(v1::Tensor*);
  };
  const Case cases[] = {
      {"unknown tensor kind 7", [](v1::Tensor* t) { t->set_kind(static_cast<v1::TensorKind>(7)); }},
      {"unknown tensor layout 5",
       [](v1::Tensor* t) { t->set_layout(static_cast<v1::TensorLayout>(5)); }},
      {"unknown datatype 'FP8'", [](v1::Tensor* t) { t->set_datatype("FP8"); }},
      {"unknown datatype ''", [](v1::Tensor* t) { t->clear_datatype(); }},
  };
  for (const Case& c : cases) {
    v1::Tensor wire = SmallTensor();
    c.spoil(&wire);
    absl::StatusOr<io::NamedTensor> read = client::FromProto(wire);
    ASSERT_FALSE(read.ok()) << c.what;
    EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss) << read.status();
    EXPECT_NE(read.status().message().find("server returned a bad tensor 'layer4_v'"),
              std::string::npos)
        << read.status();
    EXPECT_NE(read.status().message().find(c.what), std::string::npos) << read.status();
    // The server refuses the same request tensor, with the same reason.
    absl::Status server = proto::ViewFromProto(wire).status();
    EXPECT_EQ(server.code(), absl::StatusCode::kInvalidArgument) << c.what;
    EXPECT_NE(server.message().find(c.what), std::string::npos) << server;
  }
}

TEST(ConvertTest, ClientRefusesAReportWithAnUnknownKindOrDatatype) {
  v1::TensorReport kind = SmallReport();
  kind.set_kind(static_cast<v1::TensorKind>(3));
  v1::TensorReport fp8 = SmallReport();
  fp8.set_datatype("FP8");
  v1::TensorReport none = SmallReport();
  none.clear_datatype();  // was read as FP16
  for (const auto& [wire, what] :
       {std::pair{kind, "unknown tensor kind 3"}, std::pair{fp8, "unknown datatype 'FP8'"},
        std::pair{none, "unknown datatype ''"}}) {
    absl::StatusOr<client::TensorReport> r = client::ReportFromProto(wire);
    ASSERT_FALSE(r.ok()) << what;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
    EXPECT_NE(r.status().message().find("server returned a bad report for 'layer2_k'"),
              std::string::npos)
        << r.status();
    EXPECT_NE(r.status().message().find(what), std::string::npos) << r.status();
  }
}

TEST(ConvertTest, CatalogueEntriesRoundTrip) {
  const std::vector<CatalogueEntry> catalogue = CodecCatalogue();
  ASSERT_FALSE(catalogue.empty());
  for (const CatalogueEntry& e : catalogue) {
    v1::CodecInfo wire;
    proto::CatalogueEntryToProto(e, &wire);
    // Every field is on the wire, so the entry read back writes the same bytes again.
    v1::CodecInfo again;
    proto::CatalogueEntryToProto(proto::CatalogueEntryFromProto(wire), &again);
    EXPECT_EQ(again.SerializeAsString(), wire.SerializeAsString()) << e.name;
    EXPECT_EQ(wire.params_size(), static_cast<int>(e.params.size())) << e.name;
    EXPECT_EQ(wire.name(), e.name);
  }
}

}  // namespace
}  // namespace kvcomp
