#include "compute/infer_step.h"

#include <algorithm>
#include <cmath>

#include "compute/io.h"

namespace fieldstack::compute {
namespace {

using json = nlohmann::json;
namespace inf = inference;

Status Known(const json& obj, const std::string& where, std::initializer_list<const char*> known) {
  if (!obj.is_object()) return InvalidArgumentError(where + ": must be an object");
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool ok = false;
    for (const char* k : known) ok = ok || it.key() == k;
    if (!ok) return InvalidArgumentError(where + "." + it.key() + ": unknown field");
  }
  return Status::Ok();
}

Status Number(const json& obj, const char* key, const std::string& where, double lo, double hi) {
  auto it = obj.find(key);
  if (it == obj.end()) return Status::Ok();
  if (!it->is_number() || it->get<double>() < lo || it->get<double>() > hi) {
    return InvalidArgumentError(where + "." + key + ": must be a number between " +
                                std::to_string(lo) + " and " + std::to_string(hi));
  }
  return Status::Ok();
}

Status CommonModelFields(const json& d, const std::string& where) {
  auto m = d.find("model");
  if (m == d.end() || !m->is_string() || m->get<std::string>().empty()) {
    return InvalidArgumentError(where + ".model: required (a registered model's name)");
  }
  if (auto v = d.find("version");
      v != d.end() && (!v->is_number_integer() || v->get<int64_t>() < 0)) {
    return InvalidArgumentError(where + ".version: must be 0 (the newest) or a version number");
  }
  if (auto dev = d.find("device"); dev != d.end()) {
    if (!dev->is_string() || (*dev != "auto" && *dev != "cpu" && *dev != "cuda")) {
      return InvalidArgumentError(where + ".device: must be \"auto\", \"cpu\" or \"cuda\"");
    }
  }
  return Status::Ok();
}

Status CheckImageInput(const json& im, const std::string& where) {
  FS_RETURN_IF_ERROR(Known(
      im, where, {"width", "height", "letterbox", "layout", "order", "scale", "mean", "std"}));
  FS_RETURN_IF_ERROR(Number(im, "width", where, 1, 8192));
  FS_RETURN_IF_ERROR(Number(im, "height", where, 1, 8192));
  FS_RETURN_IF_ERROR(Number(im, "scale", where, -1e6, 1e6));
  if (auto l = im.find("layout");
      l != im.end() && (!l->is_string() || (*l != "nchw" && *l != "nhwc"))) {
    return InvalidArgumentError(where + ".layout: must be \"nchw\" or \"nhwc\"");
  }
  if (auto o = im.find("order");
      o != im.end() && (!o->is_string() || (*o != "rgb" && *o != "bgr"))) {
    return InvalidArgumentError(where + ".order: must be \"rgb\" or \"bgr\"");
  }
  if (auto lb = im.find("letterbox"); lb != im.end() && !lb->is_boolean()) {
    return InvalidArgumentError(where + ".letterbox: must be true or false");
  }
  for (const char* k : {"mean", "std"}) {
    auto a = im.find(k);
    if (a == im.end()) continue;
    if (!a->is_array() || a->size() != 3)
      return InvalidArgumentError(where + "." + k + ": must be 3 numbers");
    for (const auto& x : *a) {
      if (!x.is_number()) return InvalidArgumentError(where + "." + k + ": must be 3 numbers");
      if (std::string(k) == "std" && x.get<double>() == 0)
        return InvalidArgumentError(where + ".std: must not be 0");
    }
  }
  return Status::Ok();
}

inf::TensorLayout LayoutOf(const json& im) {
  inf::TensorLayout l;
  l.nchw = im.value("layout", "nchw") == "nchw";
  l.bgr = im.value("order", "rgb") == "bgr";
  l.scale = static_cast<float>(im.value("scale", 1.0 / 255));
  if (im.contains("mean")) {
    for (int i = 0; i < 3; ++i) l.mean[i] = im["mean"][static_cast<size_t>(i)].get<float>();
  }
  if (im.contains("std")) {
    for (int i = 0; i < 3; ++i) l.std[i] = im["std"][static_cast<size_t>(i)].get<float>();
  }
  return l;
}

Result<std::shared_ptr<inf::Session>> SessionFor(const json& d, const InferenceContext& ctx,
                                                 inf::ModelVersion* model) {
  if (ctx.models == nullptr || ctx.sessions == nullptr) {
    return FailedPreconditionError("inference is not available on this box (no ONNX Runtime)");
  }
  FS_ASSIGN_OR_RETURN(
      *model, ctx.models->Get(d.value("model", ""), static_cast<int>(d.value("version", 0))));
  inf::SessionOptions so;
  so.device = d.value("device", "auto");
  so.intra_op_threads = ctx.intra_op_threads;
  so.gpu_memory_limit_bytes = ctx.gpu_memory_limit_bytes;
  if (auto b = d.find("batch"); b != d.end() && b->is_object()) {
    so.max_batch = b->value("max_size", size_t{1});
    so.max_batch_latency_ms = b->value("max_latency_ms", int64_t{5});
  }
  return ctx.sessions->Get(*model, so);
}

// The model's single image input as a tensor of the image (letterboxed or stretched).
Result<std::pair<inf::Tensor, inf::Letterbox>> ImageTensor(const json& im, const inf::Session& s,
                                                           const inf::Image& img) {
  if (s.inputs().size() != 1) {
    return InvalidArgumentError("the model has " + std::to_string(s.inputs().size()) +
                                " inputs; an image step needs a model with one image input");
  }
  const inf::TensorInfo& in = s.inputs()[0];
  inf::TensorLayout layout = LayoutOf(im);
  int w = im.value("width", 0), h = im.value("height", 0);
  // Take the size from the model when it is fixed and not declared.
  if (in.shape.size() == 4) {
    int64_t mh = layout.nchw ? in.shape[2] : in.shape[1];
    int64_t mw = layout.nchw ? in.shape[3] : in.shape[2];
    if (w == 0 && mw > 0) w = static_cast<int>(mw);
    if (h == 0 && mh > 0) h = static_cast<int>(mh);
  }
  if (w <= 0 || h <= 0)
    return InvalidArgumentError("input.image: width and height are needed for this model");
  inf::Letterbox lb;
  if (im.value("letterbox", true)) {
    lb = inf::ResizeLetterbox(img, w, h);
  } else {
    lb.image = inf::Resize(img, w, h);
    lb.scale = static_cast<float>(w) / static_cast<float>(img.width);  // x only; y below
    lb.pad_x = lb.pad_y = 0;
  }
  inf::Tensor t = inf::ToTensor(lb.image, layout, in.name);
  return std::make_pair(std::move(t), std::move(lb));
}

// BlazeFace's outputs: boxes [1, N, 16] and scores [1, N, 1], either as one tensor each (896
// anchors) or split by anchor grid (keijiro's model: 512 for the 16x16 grid, then 384 for the
// 8x8 one); joined in MediaPipe's anchor order, the larger grid first.
Result<inf::Tensor> JoinByLastDim(const std::vector<inf::Tensor>& outs, int64_t last) {
  std::vector<const inf::Tensor*> parts;
  for (const auto& t : outs) {
    if (t.shape.size() == 3 && t.shape[2] == last && t.type == inf::ElementType::kFloat32)
      parts.push_back(&t);
  }
  if (parts.empty()) {
    return InvalidArgumentError(
        "output.decode \"blazeface\": the model's outputs are not BlazeFace's "
        "([1, N, 16] boxes and [1, N, 1] scores)");
  }
  std::stable_sort(parts.begin(), parts.end(), [](const inf::Tensor* a, const inf::Tensor* b) {
    return a->shape[1] > b->shape[1];
  });
  inf::Tensor joined;
  joined.name = parts[0]->name;
  joined.type = inf::ElementType::kFloat32;
  int64_t n = 0;
  for (const auto* p : parts) {
    n += p->shape[1];
    joined.data.insert(joined.data.end(), p->data.begin(), p->data.end());
  }
  joined.shape = {1, n, last};
  return joined;
}

Result<std::vector<inf::Box>> Faces(const std::vector<inf::Tensor>& outs, const inf::Letterbox& lb,
                                    const json& opts) {
  FS_ASSIGN_OR_RETURN(inf::Tensor reg, JoinByLastDim(outs, 16));
  FS_ASSIGN_OR_RETURN(inf::Tensor score, JoinByLastDim(outs, 1));
  inf::BlazeFaceOptions bo;
  bo.input_size = lb.image.width;
  bo.min_score = static_cast<float>(opts.value("min_score", 0.5));
  bo.iou_threshold = static_cast<float>(opts.value("iou", 0.3));
  return inf::DecodeBlazeFace(reg, score, lb, bo);
}

// A detection's keypoints as a JSON array of [x, y] pairs in image pixels (BlazeFace: right eye,
// left eye, nose tip, mouth, right ear, left ear).
std::string KeypointsJson(const inf::Box& b) {
  std::string out = "[";
  for (size_t i = 0; i + 1 < b.keypoints.size(); i += 2) {
    if (i) out += ',';
    out += "[" + FormatValue(Value::Float(std::round(b.keypoints[i] * 10) / 10)) + "," +
           FormatValue(Value::Float(std::round(b.keypoints[i + 1] * 10) / 10)) + "]";
  }
  return out + "]";
}

std::shared_ptr<const Schema> SchemaOf(std::vector<std::string> names) {
  return std::make_shared<const Schema>(std::move(names));
}

std::string FloatsJson(const inf::Tensor& t, size_t limit = 65536) {
  std::string out = "[";
  size_t n = std::min(t.elements(), limit);
  if (t.type == inf::ElementType::kFloat32) {
    for (size_t i = 0; i < n; ++i) {
      if (i) out += ',';
      out += FormatValue(Value::Float(t.floats()[i]));
    }
  }
  out += "]";
  return out;
}

class InferRecordStep final : public Step {
 public:
  InferRecordStep(json decl, std::shared_ptr<inf::Session> s)
      : decl_(std::move(decl)), s_(std::move(s)) {
    for (const auto& c : decl_["input"]["columns"]) columns_.push_back(c.get<std::string>());
  }
  Status Push(Record& rec, Emitter& out) override {
    std::vector<float> x;
    x.reserve(columns_.size());
    for (const auto& c : columns_) {
      const Value* v = rec.Get(c);
      if (v == nullptr || !v->is_number()) {
        return InvalidArgumentError(
            "infer.input.columns: column '" + c + "' is " +
            (v == nullptr || v->is_null() ? std::string("missing") : "'" + FormatValue(*v) + "'") +
            ", not a number");
      }
      x.push_back(static_cast<float>(v->as_double()));
    }
    const inf::TensorInfo& in = s_->inputs()[0];
    auto result = s_->Run({inf::Tensor::Float(in.name, {1, static_cast<int64_t>(x.size())}, x)});
    if (!result.ok()) return result.status().WithContext("infer");
    const inf::Tensor* t = result->empty() ? nullptr : &(*result)[0];
    if (t == nullptr) return InternalError("infer: the model gave no output");
    std::vector<std::string> names = rec.schema->names();
    std::string decode = decl_["output"].value("decode", "tensor");
    if (decode == "classes") {
      std::vector<float> p(t->floats(), t->floats() + t->elements());
      if (decl_["output"].value("softmax", false)) p = inf::Softmax(p.data(), p.size());
      auto top = inf::TopK(p.data(), p.size(), 1);
      for (const char* n : {"class", "label", "score"}) names.push_back(n);
      Record r;
      r.schema = SchemaOf(names);
      r.values = rec.values;
      r.seq = rec.seq;
      int idx = top.empty() ? -1 : top[0].first;
      r.values.push_back(Value::Int(idx));
      const json& labels = decl_["output"].value("labels", json::array());
      r.values.push_back(idx >= 0 && static_cast<size_t>(idx) < labels.size()
                             ? Value::String(labels[static_cast<size_t>(idx)].get<std::string>())
                             : Value());
      r.values.push_back(top.empty() ? Value() : Value::Float(top[0].second));
      return out.Emit(r);
    }
    names.push_back("output");
    Record r;
    r.schema = SchemaOf(names);
    r.values = rec.values;
    r.seq = rec.seq;
    r.values.push_back(Value::String(FloatsJson(*t)));
    return out.Emit(r);
  }

 private:
  json decl_;
  std::shared_ptr<inf::Session> s_;
  std::vector<std::string> columns_;
};

}  // namespace

bool IsImageStep(const json& decl) {
  std::string type = decl.value("type", "");
  if (type == "anonymize") return true;
  return type == "infer" && decl.contains("input") && decl["input"].is_object() &&
         decl["input"].contains("image");
}

Status CheckInferDecl(const json& d) {
  FS_RETURN_IF_ERROR(
      Known(d, "infer", {"type", "model", "version", "device", "input", "output", "batch"}));
  if (auto b = d.find("batch"); b != d.end()) {
    FS_RETURN_IF_ERROR(Known(*b, "infer.batch", {"max_size", "max_latency_ms"}));
    FS_RETURN_IF_ERROR(Number(*b, "max_size", "infer.batch", 1, 256));
    FS_RETURN_IF_ERROR(Number(*b, "max_latency_ms", "infer.batch", 0, 10000));
  }
  FS_RETURN_IF_ERROR(CommonModelFields(d, "infer"));
  auto in = d.find("input");
  if (in == d.end())
    return InvalidArgumentError(
        "infer.input: required ({\"image\": {...}} or {\"columns\": [...]})");
  FS_RETURN_IF_ERROR(Known(*in, "infer.input", {"image", "columns"}));
  if (in->contains("image") == in->contains("columns")) {
    return InvalidArgumentError("infer.input: give exactly one of image and columns");
  }
  if (in->contains("image"))
    FS_RETURN_IF_ERROR(CheckImageInput((*in)["image"], "infer.input.image"));
  if (in->contains("columns")) {
    const json& c = (*in)["columns"];
    if (!c.is_array() || c.empty() || c.size() > 4096) {
      return InvalidArgumentError("infer.input.columns: must be a list of 1 to 4096 column names");
    }
    for (const auto& x : c) {
      if (!x.is_string() || x.get<std::string>().empty()) {
        return InvalidArgumentError("infer.input.columns: must be a list of column names");
      }
    }
  }
  json out = d.value("output", json{{"decode", "tensor"}});
  FS_RETURN_IF_ERROR(
      Known(out, "infer.output", {"decode", "softmax", "top_k", "labels", "min_score", "iou"}));
  std::string decode = out.value("decode", "tensor");
  if (decode != "tensor" && decode != "classes" && decode != "blazeface") {
    return InvalidArgumentError(
        "infer.output.decode: must be \"tensor\", \"classes\" or \"blazeface\"");
  }
  if (decode == "blazeface" && !in->contains("image")) {
    return InvalidArgumentError("infer.output.decode: \"blazeface\" needs an image input");
  }
  FS_RETURN_IF_ERROR(Number(out, "top_k", "infer.output", 1, 1000));
  FS_RETURN_IF_ERROR(Number(out, "min_score", "infer.output", 0, 1));
  FS_RETURN_IF_ERROR(Number(out, "iou", "infer.output", 0, 1));
  if (auto l = out.find("labels"); l != out.end()) {
    if (!l->is_array())
      return InvalidArgumentError("infer.output.labels: must be a list of strings");
    for (const auto& x : *l) {
      if (!x.is_string())
        return InvalidArgumentError("infer.output.labels: must be a list of strings");
    }
  }
  if (auto s = out.find("softmax"); s != out.end() && !s->is_boolean()) {
    return InvalidArgumentError("infer.output.softmax: must be true or false");
  }
  return Status::Ok();
}

Status CheckAnonymizeDecl(const json& d) {
  FS_RETURN_IF_ERROR(Known(d, "anonymize",
                           {"type", "model", "version", "device", "mode", "min_score", "iou",
                            "margin", "format", "image"}));
  FS_RETURN_IF_ERROR(CommonModelFields(d, "anonymize"));
  if (auto m = d.find("mode");
      m != d.end() && (!m->is_string() || (*m != "blur" && *m != "black"))) {
    return InvalidArgumentError("anonymize.mode: must be \"blur\" or \"black\"");
  }
  if (auto f = d.find("format");
      f != d.end() && (!f->is_string() || (*f != "same" && *f != "png" && *f != "jpeg"))) {
    return InvalidArgumentError("anonymize.format: must be \"same\", \"png\" or \"jpeg\"");
  }
  FS_RETURN_IF_ERROR(Number(d, "min_score", "anonymize", 0, 1));
  FS_RETURN_IF_ERROR(Number(d, "iou", "anonymize", 0, 1));
  FS_RETURN_IF_ERROR(Number(d, "margin", "anonymize", 0, 2));
  if (d.contains("image")) FS_RETURN_IF_ERROR(CheckImageInput(d["image"], "anonymize.image"));
  return Status::Ok();
}

Result<std::vector<Record>> InferImage(const json& decl, const InferenceContext& ctx,
                                       std::string_view bytes, const std::string& path) {
  inf::ModelVersion model;
  FS_ASSIGN_OR_RETURN(auto session, SessionFor(decl, ctx, &model));
  FS_ASSIGN_OR_RETURN(inf::Image img, inf::DecodeImage(bytes));
  const json& im = decl["input"]["image"];
  FS_ASSIGN_OR_RETURN(auto in, ImageTensor(im, *session, img));
  auto outs = session->Run({in.first});
  if (!outs.ok())
    return outs.status().WithContext("model " + model.name + " v" + std::to_string(model.version));
  json out = decl.value("output", json{{"decode", "tensor"}});
  std::string decode = out.value("decode", "tensor");
  std::vector<Record> records;
  if (decode == "blazeface") {
    FS_ASSIGN_OR_RETURN(auto faces, Faces(*outs, in.second, out));
    auto schema = SchemaOf(
        {"path", "label", "score", "x0", "y0", "x1", "y1", "width", "height", "keypoints"});
    for (const auto& b : faces) {
      Record r;
      r.schema = schema;
      r.values = {Value::String(path),
                  Value::String("face"),
                  Value::Float(b.score),
                  Value::Float(std::round(b.x0 * 10) / 10),
                  Value::Float(std::round(b.y0 * 10) / 10),
                  Value::Float(std::round(b.x1 * 10) / 10),
                  Value::Float(std::round(b.y1 * 10) / 10),
                  Value::Int(img.width),
                  Value::Int(img.height),
                  Value::String(KeypointsJson(b))};
      records.push_back(std::move(r));
    }
    return records;
  }
  if (outs->empty()) return InternalError("the model gave no output");
  const inf::Tensor& t = (*outs)[0];
  if (decode == "classes") {
    if (t.type != inf::ElementType::kFloat32)
      return InvalidArgumentError("output.decode \"classes\" needs a float output");
    std::vector<float> p(t.floats(), t.floats() + t.elements());
    if (out.value("softmax", false)) p = inf::Softmax(p.data(), p.size());
    auto top = inf::TopK(p.data(), p.size(), static_cast<size_t>(out.value("top_k", 5)));
    auto schema = SchemaOf({"path", "rank", "class", "label", "score"});
    const json& labels = out.value("labels", json::array());
    int rank = 0;
    for (const auto& [idx, score] : top) {
      Record r;
      r.schema = schema;
      r.values = {Value::String(path), Value::Int(++rank), Value::Int(idx),
                  static_cast<size_t>(idx) < labels.size()
                      ? Value::String(labels[static_cast<size_t>(idx)])
                      : Value(),
                  Value::Float(score)};
      records.push_back(std::move(r));
    }
    return records;
  }
  Record r;
  r.schema = SchemaOf({"path", "output"});
  r.values = {Value::String(path), Value::String(FloatsJson(t))};
  records.push_back(std::move(r));
  return records;
}

Result<AnonymizedImage> AnonymizeImage(const json& decl, const InferenceContext& ctx,
                                       std::string_view bytes) {
  inf::ModelVersion model;
  FS_ASSIGN_OR_RETURN(auto session, SessionFor(decl, ctx, &model));
  FS_ASSIGN_OR_RETURN(inf::Image img, inf::DecodeImage(bytes));
  json im = decl.value("image", json::object());
  FS_ASSIGN_OR_RETURN(auto in, ImageTensor(im, *session, img));
  auto outs = session->Run({in.first});
  if (!outs.ok())
    return outs.status().WithContext("model " + model.name + " v" + std::to_string(model.version));
  FS_ASSIGN_OR_RETURN(auto faces, Faces(*outs, in.second, decl));
  float margin = static_cast<float>(decl.value("margin", 0.15));
  bool black = decl.value("mode", "blur") == "black";
  for (const auto& b : faces) {
    if (black) {
      inf::FillRegion(img, b, margin);
    } else {
      inf::BlurRegion(img, b, margin);
    }
  }
  AnonymizedImage out;
  std::string format = decl.value("format", "same");
  if (format == "same") format = inf::SniffImageFormat(bytes) == "jpeg" ? "jpeg" : "png";
  out.format = format;
  FS_ASSIGN_OR_RETURN(out.bytes, inf::EncodeImage(img, format, 92));
  out.faces = faces.size();
  return out;
}

Result<std::unique_ptr<Step>> MakeInferRecordStep(const json& decl, const InferenceContext& ctx) {
  FS_RETURN_IF_ERROR(CheckInferDecl(decl));
  if (IsImageStep(decl))
    return InvalidArgumentError("infer: an image step must be the pipeline's first step");
  inf::ModelVersion model;
  FS_ASSIGN_OR_RETURN(auto session, SessionFor(decl, ctx, &model));
  if (session->inputs().size() != 1) {
    return InvalidArgumentError("infer: model " + model.name + " has " +
                                std::to_string(session->inputs().size()) +
                                " inputs; a columns input needs a model with one");
  }
  return std::unique_ptr<Step>(new InferRecordStep(decl, session));
}

}  // namespace fieldstack::compute
