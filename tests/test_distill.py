"""training.distill: the losses on known inputs, the frozen teacher, the config, and the codec task's distill block."""

from __future__ import annotations

import json
import math

import pytest
import torch
import yaml
from torch import nn

from catcodec import CATModel
from training.config import load_config
from training.distill import DistillConfig, Distiller, DistillSignals, FrozenTeacher, feature_matching, kl_divergence
from training.task import get_task
from training.trainer import Trainer

from test_codec_task import corpus, tiny_recipe  # noqa: F401  (module-scoped corpus fixture)

pytestmark = pytest.mark.usefixtures("single_thread")


def test_kl_is_zero_for_equal_logits_both_ways():
    logits = torch.randn(2, 5, 7)
    assert kl_divergence(logits, logits.clone(), temperature=2.0).abs() < 1e-6
    assert kl_divergence(logits, logits.clone(), temperature=2.0, reverse=True).abs() < 1e-6


def test_kl_matches_the_formula_on_two_classes():
    teacher = torch.log(torch.tensor([[[0.5, 0.5]]]))
    student = torch.log(torch.tensor([[[0.9, 0.1]]]))
    forward = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)  # KL(teacher || student)
    reverse = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)  # KL(student || teacher)
    assert kl_divergence(student, teacher) == pytest.approx(forward, rel=1e-5)
    assert kl_divergence(student, teacher, reverse=True) == pytest.approx(reverse, rel=1e-5)
    # temperature 2 halves the log-odds and scales the result by 4
    s2, t2 = torch.log_softmax(student / 2, -1).exp()[0, 0], torch.log_softmax(teacher / 2, -1).exp()[0, 0]
    expected = float((t2 * (t2.log() - s2.log())).sum()) * 4
    assert kl_divergence(student, teacher, temperature=2.0) == pytest.approx(expected, rel=1e-5)


def test_kl_mask_ignores_positions_and_covers_codebooks():
    torch.manual_seed(0)
    student, teacher = torch.randn(1, 3, 4, 5), torch.randn(1, 3, 4, 5)  # [B, T, K codebooks, V]
    mask = torch.tensor([[True, True, False]])
    changed = student.clone()
    changed[:, 2] += 10.0  # a masked position: must not matter
    assert kl_divergence(student, teacher, mask=mask) == pytest.approx(float(kl_divergence(changed, teacher, mask=mask)))
    assert kl_divergence(student, teacher, mask=mask) == pytest.approx(float(kl_divergence(student[:, :2], teacher[:, :2])))


def test_feature_matching_zero_for_a_perfect_projection_and_scale_free():
    torch.manual_seed(1)
    student = torch.randn(2, 6, 4)
    projection = nn.Linear(4, 8, bias=False)
    with torch.no_grad():
        teacher = projection(student)
    assert float(feature_matching(student, teacher, projection).detach()) < 1e-10
    noisy = teacher + torch.randn_like(teacher)
    with torch.no_grad():
        a = float(feature_matching(student, noisy, projection))
        b = float(feature_matching(student * 10, noisy * 10, projection))  # everything 10x: same relative error
    assert a > 0.1 and b == pytest.approx(a, rel=1e-4)
    with pytest.raises(ValueError, match="projected student"):
        feature_matching(student, teacher)


def test_gradient_reaches_the_student_and_projection_only():
    torch.manual_seed(2)
    student_net, teacher_net = nn.Linear(3, 5), nn.Linear(3, 5)
    teacher = FrozenTeacher(teacher_net)
    before = {k: v.clone() for k, v in teacher_net.state_dict().items()}
    config = DistillConfig(teacher="unused", kl=1.0, hidden=1.0, hidden_layers=[[0, 0]])
    distiller = Distiller(config, student_hidden_dim=5, teacher_hidden_dim=5)
    x = torch.randn(2, 4, 3)
    s_out, t_out = student_net(x), teacher(x)
    assert not t_out.requires_grad
    loss, logs = distiller(DistillSignals(logits=s_out, hidden=[s_out]), DistillSignals(logits=t_out, hidden=[t_out]))
    loss.backward()
    assert set(logs) == {"distill_kl", "distill_hidden"} and loss > 0
    assert student_net.weight.grad is not None and student_net.weight.grad.abs().sum() > 0
    assert distiller.hidden_projections[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in teacher_net.parameters())
    teacher_net.train()  # whatever happens to it, the frozen teacher is called in eval mode
    teacher(x)
    assert not teacher_net.training
    assert all(torch.equal(v, before[k]) for k, v in teacher_net.state_dict().items())


def test_config_and_distiller_errors():
    assert DistillConfig.from_dict(None) is None
    with pytest.raises(ValueError, match="distill.teacher is required"):
        DistillConfig()
    with pytest.raises(ValueError, match="unknown key\\(s\\) in distill: temprature"):
        DistillConfig.from_dict({"teacher": "x", "temprature": 2})
    with pytest.raises(ValueError, match="temperature must be > 0"):
        DistillConfig(teacher="x", temperature=0)
    nothing = Distiller(DistillConfig(teacher="x", kl=0.0))
    with pytest.raises(ValueError, match="enables no loss"):
        nothing(DistillSignals(), DistillSignals())
    with pytest.raises(ValueError, match="need logits"):
        Distiller(DistillConfig(teacher="x"))(DistillSignals(), DistillSignals())
    with pytest.raises(ValueError, match="hidden widths"):
        Distiller(DistillConfig(teacher="x", hidden=1.0))


def test_hidden_projections_take_each_layers_own_width():
    config = DistillConfig(teacher="x", kl=0.0, hidden=1.0, hidden_layers=[[0, 1], [1, 0], [-1, -1]])
    distiller = Distiller(config, student_hidden_dim=[3, 5], teacher_hidden_dim=[7, 11])
    assert [(p.in_features, p.out_features) for p in distiller.hidden_projections] == [(3, 11), (5, 7), (5, 11)]
    student = DistillSignals(hidden=[torch.randn(2, 4, 3), torch.randn(2, 4, 5)])
    teacher = DistillSignals(hidden=[torch.randn(2, 4, 7), torch.randn(2, 4, 11)])
    loss, logs = distiller(student, teacher)
    assert set(logs) == {"distill_hidden"} and loss > 0


def test_annealed_distillation_weight_falls_linearly_to_zero():
    constant = DistillConfig(teacher="x")
    assert [constant.scale_at(s) for s in (0, 500, 10_000)] == [1.0, 1.0, 1.0]
    annealed = DistillConfig(teacher="x", anneal_steps=400)
    assert [annealed.scale_at(s) for s in (0, 100, 200, 400, 1000)] == [1.0, 0.75, 0.5, 0.0, 0.0]
    with pytest.raises(ValueError, match="anneal_steps must be >= 0"):
        DistillConfig(teacher="x", anneal_steps=-1)


def test_a_task_without_distillation_refuses_the_block(tmp_path, corpus):  # noqa: F811
    recipe = yaml.safe_load(tiny_recipe(tmp_path, corpus).read_text())
    recipe["task_name"] = "tts"
    recipe["distill"] = {"teacher": "x"}
    path = tmp_path / "tts.yaml"
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(ValueError, match="task 'tts' does not support distillation"):
        get_task("tts")(load_config(path))


def test_codec_task_distils_from_a_frozen_teacher(tmp_path, corpus):  # noqa: F811
    # the teacher: a tiny codec trained for 2 steps by the same recipe
    teacher_cfg = load_config(tiny_recipe(tmp_path / "teacher", corpus, max_steps=2))
    Trainer(teacher_cfg, get_task("codec")(teacher_cfg)).fit()
    teacher_dir = tmp_path / "teacher" / "run" / "model"

    recipe = tiny_recipe(tmp_path / "student", corpus, max_steps=3,
                         distill={"teacher": str(teacher_dir), "kl": 0.0, "latent": 1.0, "audio": 1.0, "task": 0.5})
    config = load_config(recipe)
    task = get_task("codec")(config)
    trainer = Trainer(config, task)
    projection = trainer.models.raw("generator").distiller.latent_projection.weight
    projection_before = projection.detach().clone()
    teacher_before = {k: v.clone() for k, v in task.teacher.model.state_dict().items()}
    trainer.fit()
    lines = [json.loads(l) for l in (tmp_path / "student" / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [l for l in lines if l["split"] == "train"]
    assert all(l["distill_latent"] > 0 and l["distill_audio"] > 0 for l in train)
    # the projection is trained with the generator; the teacher is outside the trained models and unchanged
    assert not torch.equal(projection.detach(), projection_before)
    assert all(torch.equal(v, teacher_before[k]) for k, v in task.teacher.model.state_dict().items())
    assert all(not p.requires_grad for p in task.teacher.model.parameters())
    # the exported student is a plain codec (no projection inside)
    student = CATModel.from_pretrained(tmp_path / "student" / "run" / "model")
    assert not any("distiller" in k for k in student.state_dict())


def test_a_distilled_codec_draws_what_its_alone_twin_draws(tmp_path, corpus):  # noqa: F811
    teacher_cfg = load_config(tiny_recipe(tmp_path / "teacher", corpus, max_steps=1))
    Trainer(teacher_cfg, get_task("codec")(teacher_cfg)).fit()

    def first_steps(name: str, distill: dict | None) -> list[dict]:
        # quantizer dropout makes the first step draw from the global generator
        config = load_config(tiny_recipe(tmp_path / name, corpus, {"quantizer_dropout": 0.5}, max_steps=2, distill=distill))
        Trainer(config, get_task("codec")(config)).fit()
        lines = [json.loads(l) for l in (tmp_path / name / "run" / "metrics.jsonl").read_text().splitlines()]
        return [l for l in lines if l["split"] == "train"]

    alone = first_steps("alone", None)
    # the trainer seeds again after building the models, so loading the teacher and making the projection shift
    # no random draw: same init, quantizer dropout and crops, and the first step's figures are the alone twin's
    distilled = first_steps("distilled", {"teacher": str(tmp_path / "teacher" / "run" / "model"), "kl": 0.0,
                                          "latent": 1e-9})
    for key in ("mel", "commitment", "codebook"):
        assert distilled[0][key] == alone[0][key], key


def test_codec_task_matches_decoder_stage_outputs_through_projections(tmp_path, corpus):  # noqa: F811
    from catcodec.training_task import decoder_stage_dims, decoder_stage_outputs

    teacher_cfg = load_config(tiny_recipe(tmp_path / "teacher", corpus, max_steps=1))
    Trainer(teacher_cfg, get_task("codec")(teacher_cfg)).fit()
    teacher = CATModel.from_pretrained(tmp_path / "teacher" / "run" / "model").eval()
    # the taps see every decoder stage, in the order they run, with the widths decoder_stage_dims names
    with torch.no_grad(), decoder_stage_outputs(teacher) as hidden:
        teacher(torch.randn(1, 1, 4000))
    assert [h.shape[-1] for h in hidden] == decoder_stage_dims(teacher.config)
    assert len(hidden) == teacher.config.num_stages and hidden[0].shape[1] < hidden[-1].shape[1]
    assert all(not stage._forward_hooks for stage in teacher.decoder.stages)  # removed on the way out

    recipe = tiny_recipe(tmp_path / "student", corpus, max_steps=2,
                         distill={"teacher": str(tmp_path / "teacher" / "run" / "model"), "kl": 0.0, "hidden": 1.0,
                                  "hidden_layers": [[0, 0], [-1, -1]]})
    config = load_config(recipe)
    trainer = Trainer(config, get_task("codec")(config))
    projections = trainer.models.raw("generator").distiller.hidden_projections
    dims = decoder_stage_dims(teacher.config)
    assert [(p.in_features, p.out_features) for p in projections] == [(dims[0], dims[0]), (dims[-1], dims[-1])]
    trainer.fit()
    lines = [json.loads(l) for l in (tmp_path / "student" / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(l["distill_hidden"] > 0 for l in lines if l["split"] == "train")


def test_a_codec_student_can_inherit_the_teachers_quantizer(tmp_path, corpus):  # noqa: F811
    teacher_cfg = load_config(tiny_recipe(tmp_path / "teacher", corpus, max_steps=1))
    Trainer(teacher_cfg, get_task("codec")(teacher_cfg)).fit()
    teacher_dir = tmp_path / "teacher" / "run" / "model"
    teacher = CATModel.from_pretrained(teacher_dir)
    block = {"teacher": str(teacher_dir), "kl": 0.0, "latent": 1.0, "inherit_quantizer": True}

    # a narrower encoder and decoder, the quantizer shaped like the teacher's
    narrower = {"stage_dims": [d // 2 for d in teacher.config.stage_dims]}
    config = load_config(tiny_recipe(tmp_path / "student", corpus, narrower, max_steps=1, distill=block))
    trainer = Trainer(config, get_task("codec")(config))
    generator = trainer.models.raw("generator")
    theirs = teacher.quantizer.state_dict()
    assert all(torch.equal(v, theirs[k]) for k, v in generator.codec.quantizer.state_dict().items())
    projection = generator.distiller.latent_projection.weight
    assert torch.equal(projection, torch.eye(projection.shape[0]))
    assert generator.codec.config.stage_dims != teacher.config.stage_dims  # only the quantizer is the teacher's

    # a quantizer of another shape is refused by name
    config = load_config(tiny_recipe(tmp_path / "other", corpus, {"codebook_size": teacher.config.codebook_size * 2},
                                     max_steps=1, distill=block))
    with pytest.raises(ValueError, match="inherit_quantizer needs a student quantizer shaped like the teacher's"):
        Trainer(config, get_task("codec")(config))


def test_asr_task_distils_logits_and_hidden_states_from_a_wider_teacher(tmp_path):
    from asr.modeling_asr import CATASRModel
    from test_asr_task import TEXTS, TINY, codes_manifest

    manifest = codes_manifest(tmp_path, TEXTS)
    common = [f"task.train_manifests=[{manifest}]", f"task.val_manifests=[{manifest}]", "max_steps=3", "log_every=1"]
    teacher_cfg = load_config(TINY, [f"output_dir={tmp_path / 'teacher'}", *common])
    Trainer(teacher_cfg, get_task("asr")(teacher_cfg)).fit()
    teacher_dir = tmp_path / "teacher" / "model"
    teacher_width = CATASRModel.from_pretrained(teacher_dir).config.hidden_size

    student_width = teacher_width // 2  # 32: still 4 heads of even size
    distill = {"teacher": str(teacher_dir), "kl": 1.0, "reverse_kl": 0.5, "hidden": 1.0, "anneal_steps": 4,
               "hidden_layers": [[0, 0], [-1, -1]]}  # the audio positions' states, the text positions'
    config = load_config(TINY, [f"output_dir={tmp_path / 'student'}", *common,
                                f"task.model.hidden_size={student_width}",
                                f"task.model.intermediate_size={2 * student_width}",
                                f"distill={json.dumps(distill)}"])
    task = get_task("asr")(config)
    trainer = Trainer(config, task)
    projections = trainer.models.raw("model").distiller.hidden_projections
    assert len(projections) == 2  # the audio positions' states and the text positions'
    projection = projections[0]
    assert (projection.in_features, projection.out_features) == (student_width, teacher_width)
    before = projection.weight.detach().clone()
    teacher_before = {k: v.clone() for k, v in task.teacher.model.state_dict().items()}
    trainer.fit()
    train = [json.loads(l) for l in (tmp_path / "student" / "metrics.jsonl").read_text().splitlines()]
    train = [l for l in train if l["split"] == "train"]
    assert all(l["distill_kl"] > 0 and l["distill_reverse_kl"] > 0 and l["distill_hidden"] > 0 for l in train)
    # annealed over 4 steps: the factor on the distillation losses at (0-based) steps 0, 1, 2
    assert [l["distill_scale"] for l in train] == [1.0, 0.75, 0.5]
    assert not torch.equal(projection.weight.detach(), before)
    assert all(torch.equal(v, teacher_before[k]) for k, v in task.teacher.model.state_dict().items())
    exported = CATASRModel.from_pretrained(tmp_path / "student" / "model")  # a plain ASR model, no projection
    assert exported.config.hidden_size == student_width
    # the codec-only option is refused by name rather than ignored
    codec_only = load_config(TINY, [f"output_dir={tmp_path / 'other'}", *common,
                                    f"distill={json.dumps({**distill, 'inherit_quantizer': True})}"])
    with pytest.raises(ValueError, match="inherit_quantizer is for codec students"):
        Trainer(codec_only, get_task("asr")(codec_only))
