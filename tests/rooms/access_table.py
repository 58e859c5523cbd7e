"""Who may do what with a private and an unlisted story: the table the access walk
(tests/rooms/test_access_walk.py) checks and the README shows.

Roles: anon (not signed in), outsider (signed in, not a participant), linked (an
outsider holding the unlisted link: the browser opened /s/<token>, the API client sends
X-Story-Key), participant (joined through an invitation; wrote paragraph 1), owner,
moderator. Outcomes: ok (2xx, or a redirect that is not to the login page), 404 (the
story does not exist for them), 401 / login (sign in first: the API says 401, the
browser goes to the login page), 403 (they may know it exists, but not do that),
409 (allowed, but not now: e.g. the participant wrote the last paragraph; "refused" is
the browser's: back to the page with the reason), listed / absent (whether the story
appears in the list).

Each row is (operation, method, path, private outcomes, unlisted outcomes), outcomes in
ROLES order; the path's {sid}, {pos} (the latest turn), {para} (the participant's paragraph
at position 1, answered), {tid} (the AI turn at position 2),
{job}, {other}
(another participant), {invite} and {lore} (a lore entry) are filled in by the walk.
Each row runs for each role on a fresh story.
"""

from __future__ import annotations

ROLES = ("anon", "outsider", "linked", "participant", "owner", "moderator")

READ = ("404", "404", "404", "ok", "ok", "ok"), ("404", "404", "ok", "ok", "ok", "ok")
LIST = (
    ("absent", "absent", "absent", "listed", "listed", "absent"),
    ("absent", "absent", "absent", "listed", "listed", "absent"),
)
MANAGE = ("401", "404", "404", "403", "ok", "ok"), ("401", "404", "403", "403", "ok", "ok")
MANAGE_PAGE = (
    ("login", "404", "404", "403", "ok", "ok"),
    ("login", "404", "403", "403", "ok", "ok"),
)
REPORT = ("401", "404", "404", "ok", "ok", "ok"), ("401", "404", "ok", "ok", "ok", "ok")
REPORT_FORM = (
    ("login", "404", "404", "ok", "ok", "ok"),
    ("login", "404", "ok", "ok", "ok", "ok"),
)
# Regenerate: the writer of the paragraph the answer answers (the participant) or a
# moderator; the owner and a linked reader may know the story but did not write it.
REGENERATE = ("401", "404", "404", "ok", "403", "ok"), ("401", "404", "403", "ok", "403", "ok")
# A paragraph: the participant wrote the last one (not twice in a row); anyone else who may
# read it writes (writing joins: write_access "anyone").
WRITE = ("401", "404", "404", "409", "ok", "ok"), ("401", "404", "ok", "409", "ok", "ok")
# Join without an invitation: never into a private story, not even a moderator.
JOIN = ("401", "404", "404", "ok", "ok", "409"), ("401", "404", "ok", "ok", "ok", "ok")
JOIN_PAGE = (
    ("login", "404", "404", "ok", "ok", "refused"),
    ("login", "404", "ok", "ok", "ok", "ok"),
)
# Leave: a participant; the owner stays with their story; others are not in it.
LEAVE_PAGE = (
    ("login", "404", "404", "ok", "refused", "refused"),
    ("login", "404", "refused", "ok", "refused", "refused"),
)
# Choose a candidate: the walk's job is answered already (409 for all who may read it);
# switch the answer to an alternate: as regenerate, its paragraph's writer or a moderator.
CHOOSE = ("401", "404", "404", "409", "409", "409"), ("401", "404", "409", "409", "409", "409")
# Edit or withdraw a paragraph: its writer (the participant), until the model's answer is
# final (here it is: 409); anyone else who may read the story is refused (403).
EDIT = ("401", "404", "404", "409", "403", "403"), ("401", "404", "403", "409", "403", "403")
EDIT_FORM = (
    ("login", "404", "404", "refused", "403", "403"),
    ("login", "404", "403", "refused", "403", "403"),
)
FORK = ("401", "404", "404", "ok", "ok", "ok"), ("401", "404", "ok", "ok", "ok", "ok")
FORK_PAGE = (
    ("login", "404", "404", "ok", "ok", "ok"),
    ("login", "404", "ok", "ok", "ok", "ok"),
)

API = "/api/v1"
TABLE: list[tuple[str, str, str, tuple[str, ...], tuple[str, ...]]] = [
    # reading, over the API
    ("read the story", "GET", f"{API}/stories/{{sid}}", *READ),
    ("read its turns", "GET", f"{API}/stories/{{sid}}/turns", *READ),
    ("see its participants", "GET", f"{API}/stories/{{sid}}/participants", *READ),
    ("export it", "GET", f"{API}/stories/{{sid}}/export", *READ),
    ("follow its events", "GET", f"{API}/stories/{{sid}}/events", *READ),
    ("see its model's job", "GET", f"{API}/jobs/{{job}}", *READ),
    ("find it in the list", "GET", f"{API}/stories", *LIST),
    ("read its memory and note", "GET", f"{API}/stories/{{sid}}/memory", *READ),
    ("read its lore", "GET", f"{API}/stories/{{sid}}/lore", *READ),
    ("see what the model saw", "GET", f"{API}/stories/{{sid}}/turns/{{pos}}/context", *READ),
    # reading, in the browser
    ("open its page", "GET", "/stories/{sid}", *READ),
    ("page script: turns", "GET", "/stories/{sid}/turns.json", *READ),
    ("page script: state", "GET", "/stories/{sid}/state.json", *READ),
    ("page: live events", "GET", "/stories/{sid}/events", *READ),
    ("page: export", "GET", "/stories/{sid}/export.txt", *READ),
    ("page: find it on the front page", "GET", "/", *LIST),
    ("page: report form", "GET", "/turns/{tid}/report", *REPORT_FORM),
    ("page: memory and lore", "GET", "/stories/{sid}/memory", *READ),
    ("page: what the model saw", "GET", "/stories/{sid}/turns/{pos}/context", *READ),
    # taking part
    ("report a turn", "POST", f"{API}/turns/{{tid}}/reports", *REPORT),
    ("page: report a turn", "POST", "/turns/{tid}/report", *REPORT),
    (
        "regenerate the answer",
        "POST",
        f"{API}/stories/{{sid}}/turns/{{pos}}/regenerate",
        *REGENERATE,
    ),
    ("page: regenerate", "POST", "/stories/{sid}/turns/{pos}/regenerate", *REGENERATE),
    ("choose a candidate", "POST", f"{API}/jobs/{{job}}/choose", *CHOOSE),
    ("switch the answer to an alternate", "POST", f"{API}/jobs/{{job}}/switch", *REGENERATE),
    ("write a paragraph", "POST", f"{API}/stories/{{sid}}/turns", *WRITE),
    ("page: write a paragraph", "POST", "/stories/{sid}/turns", *WRITE),
    ("edit a paragraph", "PATCH", f"{API}/stories/{{sid}}/turns/{{para}}", *EDIT),
    ("withdraw a paragraph", "DELETE", f"{API}/stories/{{sid}}/turns/{{para}}", *EDIT),
    ("page: the edit form", "GET", "/stories/{sid}/turns/{para}/edit", *EDIT_FORM),
    ("page: edit a paragraph", "POST", "/stories/{sid}/turns/{para}/edit", *EDIT),
    ("page: withdraw a paragraph", "POST", "/stories/{sid}/turns/{para}/withdraw", *EDIT),
    ("join", "POST", f"{API}/stories/{{sid}}/participants", *JOIN),
    ("page: join", "POST", "/stories/{sid}/join", *JOIN_PAGE),
    ("page: leave", "POST", "/stories/{sid}/leave", *LEAVE_PAGE),
    ("fork it", "POST", f"{API}/stories/{{sid}}/fork", *FORK),
    ("page: fork it", "POST", "/stories/{sid}/fork", *FORK_PAGE),
    # running it
    ("list invitations", "GET", f"{API}/stories/{{sid}}/invitations", *MANAGE),
    ("make an invitation", "POST", f"{API}/stories/{{sid}}/invitations", *MANAGE),
    ("withdraw an invitation", "DELETE", f"{API}/stories/{{sid}}/invitations/{{invite}}", *MANAGE),
    ("see the unlisted link", "GET", f"{API}/stories/{{sid}}/share-link", *MANAGE),
    ("page: the room", "GET", "/stories/{sid}/room", *MANAGE_PAGE),
    ("page: settings", "GET", "/stories/{sid}/settings", *MANAGE_PAGE),
    ("page: make an invitation", "POST", "/stories/{sid}/invitations", *MANAGE_PAGE),
    (
        "page: withdraw an invitation",
        "POST",
        "/stories/{sid}/invitations/{invite}/revoke",
        *MANAGE_PAGE,
    ),
    ("change its settings", "PATCH", f"{API}/stories/{{sid}}", *MANAGE),
    ("page: change its settings", "POST", "/stories/{sid}/settings", *MANAGE_PAGE),
    ("remove a participant", "DELETE", f"{API}/stories/{{sid}}/participants/{{other}}", *MANAGE),
    (
        "page: remove a participant",
        "POST",
        "/stories/{sid}/participants/{other}/remove",
        *MANAGE_PAGE,
    ),
    ("make a new link", "POST", f"{API}/stories/{{sid}}/share-link", *MANAGE),
    ("page: make a new link", "POST", "/stories/{sid}/share-link", *MANAGE_PAGE),
    ("page: lock it", "POST", "/stories/{sid}/settings/status", *MANAGE_PAGE),
    ("undo the last pair", "POST", f"{API}/stories/{{sid}}/undo", *MANAGE),
    ("page: undo the last pair", "POST", "/stories/{sid}/undo", *MANAGE_PAGE),
    ("mark a chapter", "PUT", f"{API}/stories/{{sid}}/turns/{{para}}/chapter", *MANAGE),
    ("clear a chapter", "DELETE", f"{API}/stories/{{sid}}/turns/{{para}}/chapter", *MANAGE),
    ("page: mark a chapter", "POST", "/stories/{sid}/chapters", *MANAGE_PAGE),
    # its memory, note and lore (memory_access "owner", the default)
    ("change its memory and note", "PUT", f"{API}/stories/{{sid}}/memory", *MANAGE),
    ("add a lore entry", "POST", f"{API}/stories/{{sid}}/lore", *MANAGE),
    ("change a lore entry", "PATCH", f"{API}/stories/{{sid}}/lore/{{lore}}", *MANAGE),
    ("delete a lore entry", "DELETE", f"{API}/stories/{{sid}}/lore/{{lore}}", *MANAGE),
    ("page: change its memory and note", "POST", "/stories/{sid}/memory", *MANAGE_PAGE),
    ("page: add a lore entry", "POST", "/stories/{sid}/lore", *MANAGE_PAGE),
    ("page: change a lore entry", "POST", "/stories/{sid}/lore/{lore}", *MANAGE_PAGE),
    ("page: delete a lore entry", "POST", "/stories/{sid}/lore/{lore}/delete", *MANAGE_PAGE),
    ("delete it", "DELETE", f"{API}/stories/{{sid}}", *MANAGE),
    ("page: delete it", "POST", "/stories/{sid}/delete", *MANAGE_PAGE),
]


def markdown() -> str:
    """The table as the README shows it."""
    head = "| operation | " + " | ".join(ROLES) + " |"
    rule = "|" + "---|" * (len(ROLES) + 1)
    lines = []
    for name, method, path, private, unlisted in TABLE:
        cells = [a if a == b else f"{a} / {b}" for a, b in zip(private, unlisted, strict=True)]
        lines.append(f"| {name} (`{method} {path}`) | " + " | ".join(cells) + " |")
    return "\n".join([head, rule, *lines])
