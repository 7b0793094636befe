// The capsules API: list, export (a capsule file), import (upload a file), delete.
#include "server/api_error.h"
#include "server/server_context.h"

namespace flashrt::server {

using nlohmann::json;

void add_capsule_routes(httplib::Server& http, ServerContext& ctx) {
  http.Get("/v1/capsules", guarded([&ctx](const httplib::Request&, httplib::Response& res) {
             json data = json::array();
             for (const auto& r : ctx.capsules->list()) data.push_back(capsule_json(r));
             send_json(res, {{"object", "list"}, {"data", data}});
           }));
  http.Get(R"(/v1/capsules/([^/]+))",
           guarded([&ctx](const httplib::Request& req, httplib::Response& res) {
             const std::string id = req.matches[1].str();
             const CapsuleRecord rec = ctx.capsules->info(id);
             res.set_content(ctx.capsules->export_bytes(id), "application/octet-stream");
             res.set_header("Content-Disposition", "attachment; filename=\"" + rec.id + ".cap\"");
           }));
  auto import = guarded([&ctx](const httplib::Request& req, httplib::Response& res) {
    if (req.body.empty())
      bad_request("", "missing_body", "the body must be a capsule file (flashrt capsule save)");
    send_json(res, capsule_json(ctx.capsules->import_bytes(req.body)), 201);
  });
  http.Put("/v1/capsules", import);
  http.Post("/v1/capsules", import);
  http.Delete(R"(/v1/capsules/([^/]+))",
              guarded([&ctx](const httplib::Request& req, httplib::Response& res) {
                const std::string id = req.matches[1].str();
                ctx.capsules->remove(id);
                send_json(res, {{"id", id}, {"object", "capsule"}, {"deleted", true}});
              }));
}

}  // namespace flashrt::server
