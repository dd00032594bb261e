// `detrq prepare`: the maintainer pipeline (export, calibration images, tensors, calibration, accuracy,
// model card, upload), resumable, with a dry run.
#include <nlohmann/json.hpp>

#include <cstdio>

#include "command.h"
#include "detrq/pipeline/prepare.h"

namespace detrq::cli {

void add_prepare_command(CLI::App& app, CommandAction& action, const GlobalOptions& global) {
  auto o = std::make_shared<pipeline::PrepareOptions>();
  auto onnx = std::make_shared<std::string>();
  auto work = std::make_shared<std::string>(o->work_dir.string());
  auto ids = std::make_shared<std::string>();
  auto calib_dir = std::make_shared<std::string>();
  auto eval_images = std::make_shared<std::string>();
  auto eval_annotations = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "prepare", "Maintainer pipeline: export, calibrate, measure and publish an INT8-ready RF-DETR "
                 "(with --hf-repo: RF-DETR small from PyTorch and 100 COCO val2017 images; without: on the "
                 "model and images the project ships)");
  cmd->add_option("--hf-repo", o->hf_repo, "Hub repository ORG/NAME to upload to");
  cmd->add_option("--revision", o->revision, "Branch to commit to")->capture_default_str();
  cmd->add_option("--model-variant", o->model_variant, "RF-DETR variant to export (default small)")->check(CLI::IsMember({"small", "base"}));
  cmd->add_option("--checkpoint", o->checkpoint, "Export from this checkpoint (path or Hub id)");
  cmd->add_option("--onnx", *onnx, "Use this FP32 ONNX model instead of exporting");
  cmd->add_option("--work-dir", *work, "Folder for every file the pipeline makes")->capture_default_str();
  cmd->add_option("--calibration-images", o->calibration_images,
                  "How many calibration images (default: 100 to download, all of --calibration-dir; 0: all); fewer usable fails")
      ->check(count_validator());
  cmd->add_option("--calibration-ids", *ids, "File of COCO image ids to fetch (as fetch-calibration --ids; default: the list shipped with detrq)");
  cmd->add_option("--calibration-base-url", o->calibration_base_url, "Where the images are (default COCO val2017)");
  cmd->add_option("--calibration-dir", *calib_dir, "Local calibration images instead of a download");
  cmd->add_option("--eval-images", *eval_images, "Images for the INT8-vs-FP32 accuracy (COCO format)");
  cmd->add_option("--eval-annotations", *eval_annotations, "instances.json of --eval-images");
  cmd->add_option("--license", o->license, "License in the model card")->capture_default_str();
  cmd->add_flag("--private", o->is_private, "Create the Hub repository as private (as publish --private)");
  cmd->add_option("--message", o->message, "Commit message of the upload")->capture_default_str();
  cmd->add_flag("--skip-export", o->skip_export, "Use <work-dir>/inference_model.onnx as it is");
  cmd->add_flag("--skip-calibration-download", o->skip_calibration_download, "Use <work-dir>/calibration_images as it is");
  cmd->add_flag("--skip-upload", o->skip_upload, "Prepare the files, do not publish");
  cmd->add_flag("--dry-run", o->dry_run, "Print every step with its inputs, outputs and command; change nothing");
  cmd->add_flag("--force", o->force, "Run every step even when up to date");
  cmd->add_option("--threads", o->threads, "Threads (0: one per core)")->check(count_validator());
  // Every calibration option of `detrq calibrate`, with the same names and defaults.
  const CalibrationFlags calibration = add_calibration_flags(cmd);
  cmd->callback([&action, &global, o, onnx, work, ids, calib_dir, eval_images, eval_annotations, calibration] {
    action = [&global, o, onnx, work, ids, calib_dir, eval_images, eval_annotations, calibration] {
      calibration.finish();
      o->calibration = *calibration.options;
      o->calibration_args = calibration.args();
      o->onnx = *onnx;
      o->work_dir = *work;
      o->calibration_ids = *ids;
      o->calibration_dir = *calib_dir;
      o->eval_images = *eval_images;
      o->eval_annotations = *eval_annotations;
      const auto outcome = pipeline::run_prepare(*o);
      if (global.json) {
        nlohmann::json j = {{"work_dir", outcome.work_dir.string()}, {"dry_run", o->dry_run}, {"steps", nlohmann::json::array()}};
        for (std::size_t i = 0; i < outcome.steps.size(); ++i) {
          const auto& s = outcome.steps[i];
          const auto& r = outcome.reports[i];
          nlohmann::json inputs = nlohmann::json::array(), outputs = nlohmann::json::array();
          for (const auto& p : s.inputs) inputs.push_back(p.string());
          for (const auto& p : s.outputs) outputs.push_back(p.string());
          j["steps"].push_back({{"name", s.name}, {"description", s.description}, {"status", pipeline::step_outcome_name(r.outcome)},
                                {"reason", r.reason}, {"seconds", r.seconds}, {"inputs", inputs}, {"parameters", s.parameters},
                                {"outputs", outputs}, {"command", s.command}});
        }
        std::printf("%s\n", j.dump(2).c_str());
      } else {
        std::printf("%s", outcome.description.c_str());
      }
      return 0;
    };
  });
}

}  // namespace detrq::cli
