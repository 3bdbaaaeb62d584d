"""The corpus holds a case for each way a student's kernel may lie to the judge or flood it (issue 18's
families), and ``a2kit demo --hostile`` shows every one of them. Their points are checked where the
corpus is graded (tests/test_corpus.py)."""
from autograder.pipeline.demo import demo_cases
from kit_corpus import AVAILABLE, corpus_cases

# family -> the case showing it (each must get exactly the honest baseline's points)
FAMILIES = {
    "a cell hook answering with a forged reply": "cheat_hook_forged_reply",
    "a notebook compile rewriting the grader's snippet": "cheat_compile_rewrites_snippet",
    "a thread repeating the call id": "cheat_thread_forged_reply",
    "a flood of replies under guessed ids": "cheat_flood_forged_replies",
    "broken sys.stdout and sys.stderr": "hostile_broken_stdio",
    "80 MB printed and a 70 MB image": "hostile_output_flood",
}


def test_each_family_has_a_case_and_the_hostile_demo_shows_it():
    cases, _ = corpus_cases()
    names = {c.name: c for c in cases}
    for family, name in FAMILIES.items():
        assert name in names, f"no corpus case for {family}"
        assert names[name].family in ("cheat", "hostile")
    shown = {c.name for c in demo_cases(AVAILABLE, hostile=True)[0]}
    assert set(FAMILIES.values()) <= shown
    assert not set(FAMILIES.values()) & {c.name for c in demo_cases(AVAILABLE, hostile=False)[0]}
