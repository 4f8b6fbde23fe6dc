"""The demo blog: a therapist's practice blog with a living comment thread.

Dates are relative to now, so a fresh demo always looks recently written.
"""
from __future__ import annotations

import secrets
from datetime import timedelta


from sqlalchemy import select

from . import outbound
from .extensions import db
from .models import Comment, CommentKind, CommentStatus, User, utcnow
from .pages import save_page
from .posts import save_post
from .templating import permalink
from .text import render_comment

THRIVING = """\
Every few months a colleague asks me some version of the same question: *what is the trick to
filling a practice?* They have tried the directory listings, the search ads, the networking
breakfasts. Some of it helped a little. None of it gave them what they were after, which is a
steady stream of people who want to work with *them*.

I don't think there is a trick. I think there is work, done well, over a long time.

## The referral you never see

Most of my new clients come from people I have never met. A former client mentions me to a
sister. A physician remembers that her patient came back from our sessions sleeping better. A
school counsellor hears, third-hand, that I return calls the same day. None of these people
saw an advertisement. They saw the effect of the work.

That is slow, and it is also the only kind of marketing that compounds. Each person who leaves
your office better off becomes a quiet witness for you, for years.

## What "good work" means in practice

- **Show up prepared.** Read your notes before the session, not during it.
- **Say what you will do, then do it.** If you promise a resource, send it that evening.
- **Measure something.** A short outcome questionnaire every few sessions keeps both of you
  honest about whether this is helping.
- **Refer out when you are not the right fit.** It costs you one client and earns you a
  reputation for putting people first.
- **Close well.** A planned ending, with a summary of what changed, is what people remember
  and what they tell their friends about.

## Your own growth is part of the work

Clients can feel it when their therapist is depleted. Supervision, your own therapy, a
consultation group, a real day off: these are not luxuries that compete with building a
practice. They *are* building the practice, because they are what keep the work good.

So when you ask how to grow, start with one question: *what would make next week's sessions
better than last week's?* Do that, again and again, and let the word travel.
"""

SEASONS = """\
Practices have seasons, the way gardens do. There are springs when every week brings a new
enquiry, long summers of steady work, autumns when a cohort of clients finishes together, and
winters when the phone is quiet and it is tempting to panic.

I used to treat the quiet months as a problem to be solved with more marketing. These days I
treat them as part of the cycle. Winter is when I read, take a course, update my intake forms
and rest. Spring always comes, and it comes faster when the work in the busy seasons was good,
as I wrote in [Want a Thriving Practice? Do Good Work]({thriving_url}).

If you are in a quiet season right now: it is not a verdict on you. Tend the soil.
"""

CONTAINER = """\
New therapists often tell me the fifty-minute session feels too short. Just as a client opens
up, the clock says we are nearly done.

I have come to see the time limit as one of the most therapeutic things we offer. A client
who knows the hour will end can risk going somewhere difficult, because they know they will
be walked back out again. The boundary is what makes the depth safe.

A few things that help:

1. **Name the time** about ten minutes before the end, so nobody is surprised.
2. **Leave room to land.** The last minutes are for gathering up, not for new material.
3. **Keep your own edges.** Running over "just this once" teaches both of you that the frame
   is negotiable.

How do you handle the end of a session? I would love to hear in the comments.
"""

FIRST_SESSION = """\
The first session sets the tone for everything after it, so I keep it simple and honest.

I explain confidentiality and its limits in plain words, not in a form to sign and forget. I
ask what brought them in *now*, because the timing usually matters. And I tell them what I
don't know yet: that we will find out together whether I am the right person to help.

At the end, I ask one question: *"What was it like to talk with me today?"* The answer tells
me more about whether we can work together than anything on the intake form.
"""

REST = """\
We tell our clients that rest is not laziness, and then we book ourselves seven clients a day
and answer email at eleven at night.

Here is my small, unglamorous rule: no more than five clients on any day, and one afternoon a
week with nothing scheduled at all. Not for paperwork. For walking, reading, or nothing.

My clients have never suffered from my rest. They have sometimes suffered from my fatigue.
"""

DISCUSSION = [
    # (key, parent key, name, url, minutes after publication, text)
    ("a", None, "Priya Raman", "https://example.org/priya", 95,
     "This reframed something for me. I have been apologising for ending on time, and I think my clients picked up that I saw the boundary as a failure."),
    ("b", "a", "Maya Ellison", "", 180,
     "Priya, that is such a common experience. Ending on time *is* the care. Try saying \"we have ten minutes left\" in the same warm voice you use for everything else."),
    ("c", "b", "Priya Raman", "https://example.org/priya", 260,
     "I tried it this week. One client said it helped her pace what she wanted to bring up. Thank you!"),
    ("d", None, "Tom Okafor", "", 1440,
     "I work with adolescents and the frame is even more important there. They test it constantly, and they relax when it holds."),
    ("e", "d", "Leah Brandt", "", 1600,
     "Same with couples. If one partner gets extra minutes, the other notices and it becomes part of the fight."),
    ("f", "e", "Tom Okafor", "", 1700, "Ha, yes. The clock as a neutral third party."),
    ("g", None, "Sam Whitaker", "", 2900,
     "Any tips for telehealth? Ending a video call feels more abrupt than walking someone to the door."),
]


def seed() -> int:
    """Create the demo posts and comments; returns the number of posts."""
    now = utcnow()
    author = User(username="maya", display_name="Maya Ellison")
    # The demo author cannot log in until an admin sets a password with the CLI.
    author.set_password(secrets.token_urlsafe(32))
    db.session.add(author)

    def post(days_ago, title, body, cats, tags, **kw):
        return save_post(
            None, title=title, body=body, categories=cats, tags=tags, publish=True,
            published_at=now - timedelta(days=days_ago), author=author, **kw,
        )

    rest = post(58, "Rest Is Part of the Work", REST, ["Self Care / Therapists"], ["burnout", "boundaries"])
    first = post(44, "What I Tell New Clients in the First Session", FIRST_SESSION, ["Client Care"], ["intake", "first session"])
    thriving = post(
        30, "Want a Thriving Practice? Do Good Work", THRIVING,
        ["Client Care", "Marketing / Strategy", "Self Care / Therapists"],
        ["private practice", "referrals", "personal growth"],
        comments_open=False,
    )
    seasons = post(
        12, "Seasons of Practice", SEASONS.format(thriving_url=permalink(thriving)),
        ["Marketing / Strategy", "Self Care / Therapists"], ["private practice", "personal growth"],
    )
    container = post(5, "The Fifty-Minute Hour Is a Container, Not a Cage", CONTAINER, ["Client Care"], ["boundaries", "sessions"])

    # The later post links to the earlier one, and a blog pings its own posts: sending it (a
    # self-ping, no HTTP) makes the pingback "Seasons of Practice | A SMART PRACTICE" there.
    db.session.commit()
    for row in outbound.pending_rows(seasons):
        outbound.send_now(row)
    for ping in db.session.scalars(select(Comment).where(Comment.post_id == thriving.id, Comment.kind == CommentKind.PINGBACK.value)):
        ping.created_at = seasons.published_at + timedelta(minutes=1)

    made: dict[str, Comment] = {}
    for key, parent, name, url, minutes, text in DISCUSSION:
        comment = Comment(
            post=container, parent=made.get(parent), kind=CommentKind.COMMENT.value,
            status=CommentStatus.APPROVED.value, author_name=name,
            author_email=f"{name.split()[0].lower()}@example.org", author_url=url,
            content=text, content_html=render_comment(text),
            created_at=container.published_at + timedelta(minutes=minutes),
            user_id=author.id if name == author.display_name else None,
        )
        db.session.add(comment)
        made[key] = comment
    db.session.add_all([
        Comment(post=rest, kind=CommentKind.COMMENT.value, status=CommentStatus.APPROVED.value,
                author_name="Jordan Lee", author_email="jordan@example.org",
                content="Five a day changed my life. I wish someone had told me in grad school.",
                content_html=render_comment("Five a day changed my life. I wish someone had told me in grad school."),
                created_at=rest.published_at + timedelta(hours=7)),
        Comment(post=first, kind=CommentKind.COMMENT.value, status=CommentStatus.PENDING.value,
                author_name="New Visitor", author_email="visitor@example.org",
                content="Do you offer a free consultation call before the first session?",
                content_html=render_comment("Do you offer a free consultation call before the first session?"),
                created_at=now - timedelta(hours=3)),
        Comment(post=container, kind=CommentKind.COMMENT.value, status=CommentStatus.SPAM.value,
                author_name="Cheap Pills", author_email="spam@example.invalid", author_url="http://spam.example.invalid/",
                content="Great post!!! Visit my site", content_html=render_comment("Great post!!! Visit my site"),
                created_at=now - timedelta(hours=1)),
    ])
    save_page(None, title="About", menu_order=1, author=author, body=(
        "I am Maya Ellison, a licensed therapist in private practice. I write here about the craft "
        "of therapy and the business of a small practice: first sessions, boundaries, rest, and the "
        "seasons every practice goes through.\n\nIf something here helped you, leave a comment, or "
        "link to it from your own blog: it will show up in the thread."))
    db.session.commit()
    return 5
