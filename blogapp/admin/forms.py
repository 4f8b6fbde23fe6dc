from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    EmailField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
    URLField,
)
from wtforms.validators import URL, DataRequired, Email, Length, NumberRange, Optional, ValidationError

from ..models import Category, PageStatus, PostStatus, Tag
from ..moderation import MODERATION_MODES
from ..pages import reserved_page_slug
from ..posts import split_terms
from ..text import slugify
from ..validation import RefusesNul

# Archives and permalinks know years 1900 to 9998 (see the blog's archive routes).
YEARS = range(1900, 9999)


class WholeNumberField(IntegerField):
    """An ``IntegerField`` that refuses a number of more than 20 characters as not a number at all.

    WTForms' ``NumberRange`` checks ``math.isnan(value)``, and an int past 10**308 cannot become a
    float: a 400-digit number raised OverflowError (a 500) instead of failing the range.
    """

    MAX_LENGTH = 20

    def process_formdata(self, valuelist):
        if valuelist and len(valuelist[0].strip()) > self.MAX_LENGTH:
            self.data = None
            raise ValueError(self.gettext("Not a valid integer value."))
        super().process_formdata(valuelist)


class KeysField(TextAreaField):
    """A list of keys, one per line, as WordPress's Comment Moderation and Disallowed Comment Keys
    boxes: blank lines dropped, each line's spaces trimmed."""

    MAX_KEY = 500  # characters of one key
    MAX_TEXT = 20000  # characters of the whole box

    def _value(self):
        if self.raw_data:  # what was typed, shown again (a NUL aside: the form refuses it)
            return self.raw_data[0].replace("\x00", "")
        return "\n".join(self.data or [])

    def process_formdata(self, valuelist):
        if valuelist:
            self.data = [line.strip() for line in valuelist[0].splitlines() if line.strip()]

    def pre_validate(self, form):
        if self.raw_data and len(self.raw_data[0]) > self.MAX_TEXT:
            raise ValidationError(f"Field cannot be longer than {self.MAX_TEXT} characters.")
        if any(len(key) > self.MAX_KEY for key in self.data or []):
            raise ValidationError(f"Each line can be at most {self.MAX_KEY} characters long.")


def _term_lengths(model):
    """A validator: each comma-separated name fits in ``model``'s name column."""
    limit = model.name.type.length

    def check(form, field):
        for name in split_terms(field.data):
            if len(name) > limit:
                raise ValidationError(f"Each name can be at most {limit} characters long.")

    return check


class LoginForm(RefusesNul, FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=80)])
    password = PasswordField("Password", validators=[DataRequired()])
    remember = BooleanField("Remember me")


class PostForm(RefusesNul, FlaskForm):
    title = StringField("Title", validators=[DataRequired("A post needs a title."), Length(max=300)])
    slug = StringField("Slug", description="The last part of the address. Leave empty to make one from the title.", validators=[Optional(), Length(max=180)])
    body = TextAreaField("Body (Markdown)", validators=[Length(max=500_000)])
    excerpt = TextAreaField("Excerpt", description="A short summary for listings and feeds. Leave empty to use the "
                            "beginning of the post.", validators=[Optional(), Length(max=5_000)])
    categories = StringField(
        "Categories",
        description="Comma-separated, e.g. Client Care, Self Care / Therapists",
        validators=[_term_lengths(Category)],
    )
    tags = StringField("Tags", description="Comma-separated", validators=[_term_lengths(Tag)])
    status = RadioField(
        "Status",
        choices=[SelectChoice(PostStatus.DRAFT.value, "Draft"), SelectChoice(PostStatus.PUBLISHED.value, "Published"),
                 SelectChoice(PostStatus.PRIVATE.value, "Private")],
        default="draft",
        description="Private: only logged-in admins can read it; it is never listed, fed or pinged.",
    )
    published_at = DateTimeLocalField(
        "Publish date", format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"], validators=[Optional()],
        description="Leave empty to publish now. A future date schedules the post.",
    )
    comments_open = BooleanField("Allow comments", default=True)
    pings_open = BooleanField("Allow pingbacks and trackbacks on this page", default=True)
    send_linkbacks = BooleanField("Tell the pages this post links to (Webmention, pingback, trackback)", default=True)

    def validate_published_at(self, field):
        if field.data is not None and field.data.year not in YEARS:
            raise ValidationError(f"Give a date between the years {YEARS.start} and {YEARS.stop - 1}.")


class PageForm(RefusesNul, FlaskForm):
    title = StringField("Title", validators=[DataRequired("A page needs a title."), Length(max=300)])
    slug = StringField("Slug", description="The page's address: /slug/. Leave empty to make one from the title.",
                       validators=[Optional(), Length(max=180)])
    body = TextAreaField("Body (Markdown)", validators=[Length(max=500_000)])
    menu_order = WholeNumberField("Menu order", default=0, validators=[Optional(), NumberRange(-1_000_000, 1_000_000)],
                                  description="The navigation lists pages by this number, then by title.")
    status = RadioField(
        "Status",
        choices=[SelectChoice(PageStatus.DRAFT.value, "Draft"), SelectChoice(PageStatus.PUBLISHED.value, "Published")],
        default="draft",
    )

    def validate_slug(self, field):
        slug = slugify(field.data or "")
        if slug and reserved_page_slug(slug):
            year = " (a year)" if slug.isdigit() else ""
            raise ValidationError(f"/{slug}/ is one of the site's own addresses{year}; choose another slug.")


def _stripped(value):
    return value.strip() if isinstance(value, str) else value


class CommentEditForm(RefusesNul, FlaskForm):
    author_name = StringField("Name", validators=[DataRequired(), Length(max=245)])
    # Stripped, as the comment form does: Optional() passes a value of spaces alone without its
    # other checks (Length among them), and 2,001 of them would not fit the column.
    author_email = EmailField("Email", filters=[_stripped],
                              validators=[Optional(), Email(check_deliverability=False), Length(max=254)])
    author_url = URLField("URL", filters=[_stripped], validators=[Optional(), URL(), Length(max=2000)])
    content = TextAreaField("Comment", validators=[DataRequired(), Length(max=10000)])
    status = SelectField(
        "Status", choices=[SelectChoice(s, s.capitalize()) for s in ("pending", "approved", "spam", "trash")]
    )

    def validate_author_url(self, field):
        # WTForms' URL() takes any scheme ("javascript://x.example/%0Aalert(1)"), and readers get
        # the author's name as a link to it.
        if field.data and not field.data.lower().startswith(("http://", "https://")):
            raise ValidationError("Give an http:// or https:// address.")


class ReplyForm(RefusesNul, FlaskForm):
    content = TextAreaField("Your reply", validators=[DataRequired("Write something to reply."), Length(max=10000)])


class SettingsForm(RefusesNul, FlaskForm):
    SITE_TITLE = StringField("Site title", validators=[DataRequired(), Length(max=200)])
    SITE_DESCRIPTION = StringField("Tagline", validators=[Length(max=300)])
    POSTS_PER_PAGE = WholeNumberField("Posts per page", validators=[NumberRange(1, 100)])
    COMMENT_MODERATION = RadioField(
        "New comments", choices=[SelectChoice(value, label) for value, label in MODERATION_MODES.items()]
    )
    COMMENT_THREAD_DEPTH = WholeNumberField("Thread comments this many levels deep", validators=[NumberRange(1, 10)])
    CLOSE_COMMENTS_AFTER_DAYS = WholeNumberField(
        "Close comments and pings on posts older than this many days", description="0 = never", validators=[NumberRange(0, 100000)]
    )
    COMMENT_MAX_LINKS = WholeNumberField(
        "Hold a comment in the queue if it contains this many links or more",
        description="Linkbacks too (their excerpt). 0 = no limit.", validators=[NumberRange(0, 1000)]
    )
    COMMENT_MODERATION_KEYS = KeysField(
        "Comment moderation",
        description="When a comment or linkback contains any of these words in its content, author name, URL, "
                    "email, IP address or browser's user agent, it is held in the moderation queue. One word or "
                    "IP address per line. It also matches inside words, so \u201cpress\u201d matches "
                    "\u201cWordPress\u201d.",
    )
    COMMENT_DISALLOWED_KEYS = KeysField(
        "Disallowed comment keys",
        description="When a comment or linkback contains any of these words in its content, author name, URL, "
                    "email, IP address or browser's user agent, it is put in Spam. One word or IP address per "
                    "line. It also matches inside words.",
    )
    # Notifications (blogapp/notify/): mailed only when MAIL_SERVER is set.
    NOTIFY_EMAIL = EmailField(
        "Notification address",
        description="Where mails about comments and linkbacks go. Empty: none are sent.",
        validators=[Optional(), Email("That email address does not look right.", check_deliverability=False),
                    Length(max=254)],
        filters=[_stripped],
    )
    NOTIFY_HELD = BooleanField("A comment or linkback is held for moderation")
    NOTIFY_PUBLISHED = BooleanField("A comment or linkback is published")


class ActionForm(RefusesNul, FlaskForm):
    """An empty form: only its CSRF token, for buttons that change things."""


class BlockDomainForm(RefusesNul, FlaskForm):
    domain = StringField("Domain", description="e.g. spam.example — its subdomains are blocked too.",
                         validators=[DataRequired("Give a domain to block."), Length(max=253)])

    def validate_domain(self, field):
        value = field.data.strip().lower().rstrip(".")
        if "://" in value:  # a pasted URL: keep its host
            from urllib.parse import urlsplit

            try:
                value = (urlsplit(value).hostname or "").rstrip(".")
            except ValueError:  # "http://[::1" (an unclosed bracket), "http://\u2100.example" (NFKC has a "/")
                value = ""
        if not value or not all(label and len(label) <= 63 and label.replace("-", "").isalnum() for label in value.split(".")):
            raise ValidationError("That does not look like a domain name.")
        field.data = value
