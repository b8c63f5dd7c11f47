#!/usr/bin/env python3
"""The label model of `dga` (Sources/SiphonDetect/NameRandomness.swift), trained from the shipped Public Suffix List.

Usage: scripts/name_model.py            # writes Sources/SiphonDetect/NameModel.swift (the table Siphon ships)
A character bigram model (symbols: boundary, a-z, 0-9, '-'; add-one smoothing; log2) of the list's labels (3+
characters, no IDN, each once, in the list's order), trained on the labels whose FNV-1a hash is not 0 mod 5; the
threshold is the 1st percentile of the held-out labels of 7+ characters. scripts/gen_scenarios.py imports `model()`
to compute what its DGA scenarios must raise; `C2ChannelTests` checks the shipped table against a training in Swift.
"""
import math, os, sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
SYMBOLS = 38


def symbol(c):
    o = ord(c)
    return o - 96 if 97 <= o <= 122 else o - 48 + 27 if 48 <= o <= 57 else 37 if c == "-" else None


def fnv(x):
    h = 0xCBF29CE484222325
    for b in x.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def labels():
    text = open(os.path.join(ROOT, "Sources/SiphonDetect/data/public_suffix_list.dat"), encoding="utf-8").read()
    seen, out = set(), []
    for line in text.split("\n"):
        rule = line.split(" ")[0]
        if not rule or rule.startswith("//"):
            continue
        for label in rule.split("."):
            l = label.lstrip("*!").lower()
            if len(l) >= 3 and not l.startswith("xn--") and all(symbol(c) is not None for c in l) and l not in seen:
                seen.add(l)
                out.append(l)
    return out


def model():
    """(log-probability table, threshold, training labels, held-out labels, score function)."""
    all_labels = labels()
    training = [l for l in all_labels if fnv(l) % 5 != 0]
    held = [l for l in all_labels if fnv(l) % 5 == 0]
    n = SYMBOLS
    counts = [0] * (n * n)
    for l in training:
        p = 0
        for c in l:
            counts[p * n + symbol(c)] += 1
            p = symbol(c)
        counts[p * n] += 1
    logs = [0.0] * (n * n)
    for r in range(n):
        total = sum(counts[r * n:(r + 1) * n]) + n
        for c in range(n):
            logs[r * n + c] = math.log2((counts[r * n + c] + 1) / total)

    def score(l):
        p, t = 0, 0.0
        for c in l:
            t += logs[p * n + symbol(c)]
            p = symbol(c)
        return (t + logs[p * n]) / (len(l) + 1)

    scores = sorted(score(l) for l in held if len(l) >= 7)
    return logs, scores[len(scores) // 100], len(training), len(held), score


def is_random_function():
    _, threshold, _, _, score = model()
    return lambda l: len(l) >= 7 and all(symbol(c) is not None for c in l) and score(l) < threshold


def main():
    logs, threshold, training, held, _ = model()
    rows = []
    for r in range(SYMBOLS):
        rows.append("        " + ", ".join(repr(x) for x in logs[r * SYMBOLS:(r + 1) * SYMBOLS]) + ",")
    out = os.path.join(ROOT, "Sources/SiphonDetect/NameModel.swift")
    with open(out, "w") as f:
        f.write("// Written by scripts/name_model.py from Sources/SiphonDetect/data/public_suffix_list.dat: do not edit.\n"
                "// C2ChannelTests.nameModelIsTheListsTraining checks it against a training in Swift.\n\n"
                "/// The label model `NameRandomness.shared` uses, trained offline (training at start cost 27 M instructions).\n"
                "enum NameModel {\n"
                f"    static let trainingLabels = {training}\n"
                f"    static let heldOutLabels = {held}\n"
                f"    static let threshold = {threshold!r}\n"
                "    /// log2 P(next | previous), row by previous symbol (0 boundary, 1-26 a-z, 27-36 0-9, 37 hyphen).\n"
                "    static let logProbability: [Double] = [\n" + "\n".join(rows) + "\n    ]\n}\n")
    print(f"{out}: {training} training labels, {held} held out, threshold {threshold!r}")


if __name__ == "__main__":
    main()
