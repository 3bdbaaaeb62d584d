"""What an LMS download's names say: the LMS, the student's id there, their name, the late mark, the file.

Each LMS names what it hands out in its own way (read from their sources):

* **Canvas** (*Assignments → Download Submissions*, a flat zip): every uploaded file is
  ``<name>[_LATE]_<user id>_<attachment id>_<file>``, where ``<name>`` is the student's sortable
  name lower-cased with everything but letters and digits removed (``Smith, Alice`` →
  ``smithalice``; letters of any script stay, ``王, 小明`` → ``王小明``), ``LATE`` marks a submission
  after the due date Canvas knows (its own overrides included), the attachment id grows with each
  upload, and ``<file>`` is the student's file name, with ``-1``, ``-2``... before the extension
  when it repeats the name of an earlier upload (a resubmission). Only the latest attempt's files
  are in a download. Anonymous grading writes ``anon_<id>`` instead of the name and user id; a text
  entry is ``<name>_<user id>_text.html``, a URL ``..._link.html``.
* **Moodle** (*View all submissions → Download all submissions*): ``<Full Name>_<participant
  id>_assignsubmission_file_`` is a folder per student ("download submissions in folders", the
  default since Moodle 3.1; newer versions drop the final ``_``) holding the files as uploaded,
  or, flat, each file is that prefix followed by its name. Underscores in names become spaces;
  blind marking writes ``Participant`` as the name. Online text is ``..._assignsubmission_onlinetext_``.
* Anything else is a plain folder or zip per student, named by the student (or ``--id-pattern``).

Students are keyed by the LMS's id (:attr:`Source.key`), never by a name made ASCII: two students
called 王小明 with different Canvas ids are two students. File names are data: a name may hold
any bytes the file system allows (Python shows undecodable bytes as surrogate escapes);
:func:`shown` prints one escaped, :func:`slug` makes a readable id from it.
"""
from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass

CANVAS = re.compile(r"^(?:(?P<person>.*?)_)??(?:(?P<late>LATE)_)?(?P<lms_id>\d+|anon_[A-Za-z0-9]+)_"
                    r"(?:(?P<attachment>\d+)_(?P<file>.+)|(?P<entry>text\.html|link\.html))$", re.DOTALL)
MOODLE = re.compile(r"^(?P<person>.+?)_(?P<lms_id>\d+)_assignsubmission_(?P<plugin>[a-z]+?)(?:_(?P<file>.*))?$",
                    re.DOTALL)
RESUBMITTED = re.compile(r"^(?P<stem>.+)-(?P<n>\d{1,2})(?P<ext>\.[A-Za-z][A-Za-z0-9]*)$")  # Canvas: a2-1.zip


@dataclass(frozen=True)
class Source:
    """One name in an LMS download and what it says.

    ``lms``: ``canvas``, ``moodle``, ``custom`` (``--id-pattern``) or ``""`` (a plain name);
    ``lms_id``: the LMS's id of the student (Canvas user id or ``anon_...``, Moodle participant id);
    ``person``: the name the LMS wrote; ``late``: Canvas's ``LATE`` mark; ``attachment``: Canvas's
    attachment id (newer uploads are larger); ``file``: the student's own file name inside the LMS's
    name (``""`` for a Moodle folder); ``kind``: ``upload``, or what else the LMS put there
    (``text``, ``link``, ``onlinetext``...).
    """

    name: str
    lms: str = ""
    lms_id: str = ""
    person: str = ""
    late: bool = False
    attachment: int | None = None
    file: str = ""
    kind: str = "upload"

    @property
    def key(self) -> tuple[str, str]:
        """Who this is: ``(lms, lms id)`` where the LMS gives an id, else ``("", student id)`` (a plain name)."""
        if self.lms_id:
            return self.lms, self.lms_id
        return "", plain_id(self.person or strip_zip(self.name))


def strip_zip(name: str) -> str:
    return name[:-4] if name.lower().endswith(".zip") else name


def parse(name: str, pattern: str | None = None) -> Source:
    """What the folder or file called ``name`` says (see the module's docstring)."""
    if pattern:
        m = re.match(pattern, strip_zip(name))
        if m:
            groups = m.groupdict()
            person = groups["id"] if "id" in groups else m.group(1)
            return Source(name, "custom", groups.get("lms_id") or "", person or "")
        return Source(name)
    m = MOODLE.match(name)
    if m:
        kind = "upload" if m["plugin"] == "file" else m["plugin"]
        return Source(name, "moodle", m["lms_id"], m["person"], file=m["file"] or "", kind=kind)
    m = CANVAS.match(name)
    if m:
        kind = "upload" if m["attachment"] else m["entry"].split(".")[0]
        return Source(name, "canvas", m["lms_id"], m["person"] or "", bool(m["late"]),
                      int(m["attachment"]) if m["attachment"] else None, m["file"] or "", kind)
    return Source(name)


def resubmitted_name(file: str, wanted: set[str]) -> str:
    """Canvas's name for a repeated upload without its ``-N`` (``01_theory-1.ipynb`` → ``01_theory.ipynb``)
    when that is a name the assignment wants (``wanted``) or a zip; else ``file`` unchanged."""
    m = RESUBMITTED.match(file)
    if m:
        original = m["stem"] + m["ext"]
        if original in wanted or m["ext"].lower() == ".zip":
            return original
    return file


# -- names as text -------------------------------------------------------------------------------
def decoded(name: str) -> str:
    """``name``'s bytes as text: UTF-8, else Latin-1 (a Windows or old Unix name), never failing."""
    raw = os.fsencode(name)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def shown(name: str) -> str:
    """``name`` printable: undecodable bytes as ``\\xfc``, control characters escaped (tables, CSV files)."""
    text = os.fsencode(name).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def slug(text: str) -> str:
    """A readable id from a name: ASCII letters and digits joined by ``_`` (``José Núñez`` → ``jose_nunez``);
    ``""`` when nothing of it is Latin (``王小明``)."""
    ascii_text = unicodedata.normalize("NFKD", decoded(text)).encode("ascii", "ignore").decode("ascii").lower()
    return re.sub(r"[^a-z0-9]+", "_", ascii_text).strip("_")


def plain_id(name: str) -> str:
    """The student id of a plain folder or zip called ``name``: its slug, or ``unnamed_<hash>`` of its
    bytes when it has no Latin letter (two such names stay two students)."""
    return slug(name) or "unnamed_" + hashlib.sha256(os.fsencode(name)).hexdigest()[:8]


def student_ids(keys: list[tuple[str, str]], persons: dict[tuple[str, str], str],
                known: dict[tuple[str, str], str]) -> dict[tuple[str, str], str]:
    """An nbgrader student id per key (:attr:`Source.key`): the one ``known`` from an earlier collect (the
    roster), else the slug of the person's name (``smithalice``, ``alice_smith``), else ``<lms>_<lms
    id>``; a name that two LMS ids share, or that another student has, gets the LMS id appended
    (``wang_12345``). A plain key is its own id. ``persons``: the name the LMS wrote, per key."""
    taken = set(known.values())
    ids = {key: known[key] for key in keys if key in known}
    proposals = {}
    for key in keys:
        if key in ids:
            continue
        lms, lms_id = key
        if not lms:
            ids[key] = lms_id
            continue
        proposals[key] = slug(persons.get(key, "")) or f"{lms}_{slug(lms_id) or plain_id(lms_id)}"
    taken |= set(ids.values())
    counts: dict[str, int] = {}
    for proposal in proposals.values():
        counts[proposal] = counts.get(proposal, 0) + 1
    for key, proposal in proposals.items():
        shared = counts[proposal] > 1 or proposal in taken
        ids[key] = f"{proposal}_{slug(key[1])}" if shared else proposal
    return ids
