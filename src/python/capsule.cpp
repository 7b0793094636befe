// flashrt.Capsule: a session's whole state at a boundary, in device memory, host memory or a file.
#include <pybind11/stl.h>

#include "capsule/capsule_file.h"
#include "python/handles.h"

namespace flashrt::python {

namespace {

std::string path_of(const py::object& p) {
  return py::str(p).cast<std::string>();
}

// A host copy of the capsule (device: copied over; disk: read and validated).
Capsule host_copy(const CapsuleHandle& h) {
  if (h.capsule.tier == Tier::kHost) return h.capsule;
  if (h.capsule.tier == Tier::kDisk) return read_capsule_file(h.capsule.path);
  return to_host(h.capsule, *h.owner->backend);
}

py::dict inspect(const CapsuleHandle& h) {
  const Capsule& c = h.capsule;
  py::list entries;
  for (const CapsuleEntry& e : c.entries) {
    py::dict d;
    d["name"] = e.name;
    d["dtype"] = std::string(dtype_name(e.dtype));
    d["kind"] = region_kind_name(e.kind);
    d["shape"] = e.shape;
    d["bytes"] = e.bytes;
    entries.append(d);
  }
  py::dict d;
  d["fingerprint"] = c.fingerprint.hex();
  d["pos"] = c.pos;
  d["tokens"] = h.tokens;
  d["tier"] = tier_name(c.tier);
  d["nbytes"] = c.payload_bytes();
  if (c.tier == Tier::kDisk) d["path"] = c.path;
  d["entries"] = entries;
  return d;
}

}  // namespace

void bind_capsule(py::module_& m) {
  py::class_<CapsuleHandle, std::shared_ptr<CapsuleHandle>>(
      m, "Capsule",
      "A session's whole execution state at a boundary (KV, recurrent and conv state, MTP state, "
      "sampler RNG, position), tied to its model and slot layout by a fingerprint. Immutable.")
      .def_property_readonly("pos", [](const CapsuleHandle& h) { return h.capsule.pos; })
      .def_property_readonly("tokens", [](const CapsuleHandle& h) { return h.tokens; })
      .def_property_readonly("tier",
                             [](const CapsuleHandle& h) { return tier_name(h.capsule.tier); })
      .def_property_readonly("nbytes",
                             [](const CapsuleHandle& h) { return h.capsule.payload_bytes(); })
      .def_property_readonly("fingerprint",
                             [](const CapsuleHandle& h) { return h.capsule.fingerprint.hex(); })
      .def_property_readonly("path",
                             [](const CapsuleHandle& h) -> std::optional<std::string> {
                               if (h.capsule.tier != Tier::kDisk) return std::nullopt;
                               return h.capsule.path;
                             })
      .def(
          "save",
          [](const CapsuleHandle& h, const py::object& path, bool compress) {
            const std::string p = path_of(path);
            py::gil_scoped_release nogil;
            CapsuleWriteOptions o;
            o.zstd = compress;
            return write_capsule_file(host_copy(h), p, o);
          },
          py::arg("path"), py::arg("compress") = false,
          "Writes the capsule file (temp file, fsync, rename: never a partial file under the "
          "name); compress uses zstd. Returns the file size.")
      .def_static(
          "load",
          [](const py::object& path) {
            const std::string p = path_of(path);
            auto h = std::make_shared<CapsuleHandle>();
            py::gil_scoped_release nogil;
            try {
              h->capsule = read_capsule_file(p);
              h->tokens = capsule_tokens(h->capsule);
            } catch (const Error& e) {
              throw CapsuleError(e.what());
            }
            return h;
          },
          py::arg("path"),
          "Reads and validates a capsule file completely (flashrt.CapsuleError when it is not a "
          "valid capsule).")
      .def("inspect", &inspect)
      .def("__repr__", [](const CapsuleHandle& h) {
        return fmt::format("<flashrt.Capsule {} tokens, {} bytes, {}>", h.tokens,
                           h.capsule.payload_bytes(), tier_name(h.capsule.tier));
      });
}

}  // namespace flashrt::python
