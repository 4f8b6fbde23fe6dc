from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, StringField, TextAreaField, URLField, ValidationError
from wtforms.validators import URL, DataRequired, Email, Length, Optional


class CommentForm(FlaskForm):
    # Anonymous and shown on cacheable pages: a session-bound CSRF token would add nothing.
    class Meta:
        csrf = False

    author_name = StringField("Name", validators=[DataRequired("Please give your name."), Length(max=245)])
    author_email = EmailField(
        "Email",
        description="Not published.",
        validators=[
            DataRequired("Please give your email address."),
            Email("That email address does not look right.", check_deliverability=False),
            Length(max=254),
        ],
    )
    author_url = URLField(
        "Website",
        validators=[Optional(), URL(message="Give a full web address, starting with http:// or https://."), Length(max=2000)],
    )
    content = TextAreaField(
        "Comment",
        validators=[DataRequired("Please write a comment."), Length(max=10000, message="Comments are limited to 10,000 characters.")],
    )
    parent_id = HiddenField()
    # Honeypot: hidden from people by CSS; bots that fill every field give themselves away.
    homepage = StringField("Leave this field empty")

    def validate_author_url(self, field):
        if field.data and not field.data.lower().startswith(("http://", "https://")):
            raise ValidationError("Give a full web address, starting with http:// or https://.")
