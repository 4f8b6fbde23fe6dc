"""WordPress post content (a WXR export's content:encoded) as WordPress showed it to readers."""
from __future__ import annotations

import pytest

from blogapp.wxr.wpcontent import (
    Attachment,
    Converted,
    autop,
    convert_post_content,
    strip_block_comments,
    texturize,
    texturize_text,
)


def html(content, attachments=None, parent_id=None) -> str:
    return convert_post_content(content, attachments, parent_id).html


# --- autop -----------------------------------------------------------------------------------

# Inputs and what WordPress 6.1.9's wpautop returned for them (the Debian package, run as is).
WORDPRESS_6_1_AUTOP = [
    ("First paragraph.\nSame paragraph, next line.\n\nSecond paragraph.",
     "<p>First paragraph.<br />\nSame paragraph, next line.</p>\n<p>Second paragraph.</p>\n"),
    ("<h2>A heading</h2>\nText right under it.\n\n<ul>\n<li>one</li>\n<li>two\nlines</li>\n</ul>\nAfter the list.",
     "<h2>A heading</h2>\n<p>Text right under it.</p>\n<ul>\n<li>one</li>\n<li>two<br />\nlines</li>\n</ul>\n"
     "<p>After the list.</p>\n"),
    ("<blockquote>Quoted line\nsecond line\n\nSecond quoted paragraph</blockquote>",
     "<blockquote><p>Quoted line<br />\nsecond line</p>\n<p>Second quoted paragraph</p></blockquote>\n"),
    ("Before\n<pre>code here\n\n  indented\n</pre>\nAfter",
     "<p>Before</p>\n<pre>code here\n\n  indented\n</pre>\n<p>After</p>\n"),
    ("<p>Already a paragraph.</p>\n<p>Another\nwith a break.</p>",
     "<p>Already a paragraph.</p>\n<p>Another<br />\nwith a break.</p>\n"),
    ("<p>\n\nBlank lines inside an explicit paragraph.\n\n</p>",
     "<p>Blank lines inside an explicit paragraph.</p>\n"),
    ('<a href="https://example.org/">A link</a> starts this paragraph.\n\n'
     '<img src="https://example.org/a.jpg" alt="" /> an image starts this one.',
     '<p><a href="https://example.org/">A link</a> starts this paragraph.</p>\n'
     '<p><img src="https://example.org/a.jpg" alt="" /> an image starts this one.</p>\n'),
    ("<!--more-->\nText after the more tag.",
     "<p><!--more--><br />\nText after the more tag.</p>\n"),
    ("<table>\n<tr>\n<td>cell\ntwo lines</td>\n</tr>\n</table>",
     "<table>\n<tr>\n<td>cell<br />\ntwo lines</td>\n</tr>\n</table>\n"),
    ('<div class="box">\n\nInside a div.\n\n</div>',
     '<div class="box">\n<p>Inside a div.</p>\n</div>\n'),
    ("One<br>\nTwo<br /><br />Three",
     "<p>One<br />\nTwo</p>\n<p>Three</p>\n"),
    ("Line one\n<hr />\nLine two",
     "<p>Line one</p>\n<hr />\n<p>Line two</p>\n"),
    ('<figure><img src="a.jpg" />\n<figcaption>Caption</figcaption>\n</figure>',
     '<figure><img src="a.jpg" /><figcaption>Caption</figcaption></figure>\n'),
    ("<ol>\n<li>Step one\n<ul>\n<li>detail</li>\n</ul>\n</li>\n<li>Step two</li>\n</ol>",
     "<ol>\n<li>Step one\n<ul>\n<li>detail</li>\n</ul>\n</li>\n<li>Step two</li>\n</ol>\n"),
    ('<a\nhref="https://example.org/">a tag across lines</a>',
     '<p><a\nhref="https://example.org/">a tag across lines</a></p>\n'),
    ("<div>\ntext\n</div>", "<div>\ntext\n</div>\n"),
    ("<blockquote>\nq</blockquote>", "<blockquote><p>\nq</p></blockquote>\n"),
]


@pytest.mark.parametrize("text, expected", WORDPRESS_6_1_AUTOP)
def test_autop_matches_wordpress_6_1(text, expected):
    assert autop(text) == expected


def test_blank_lines_make_paragraphs():
    assert autop("One.\n\nTwo.\n\n\n\nThree.") == "<p>One.</p>\n<p>Two.</p>\n<p>Three.</p>\n"


def test_single_newline_is_a_line_break_and_windows_newlines_count_too():
    assert autop("a\nb") == "<p>a<br />\nb</p>\n"
    assert autop("a\r\nb\r\n\r\nc") == "<p>a<br />\nb</p>\n<p>c</p>\n"


@pytest.mark.parametrize("tag", ["div", "ul", "ol", "blockquote", "table", "h3", "section", "figure", "dl"])
def test_block_elements_are_not_wrapped_and_get_no_br_at_their_tags(tag):
    result = autop(f"Before\n<{tag}>x</{tag}>\nAfter")
    assert result.startswith("<p>Before</p>\n")
    assert result.endswith("\n<p>After</p>\n")
    assert f"<p><{tag}>" not in result
    assert "<br />" not in result


def test_pre_is_kept_byte_for_byte():
    code = "<pre>def f():\n\n    return [1]\n<b>x</b>\n</pre>"
    result = autop(f"Look:\n\n{code}\n\nDone.")
    assert code in result
    assert result == f"<p>Look:</p>\n{code}\n<p>Done.</p>\n"


def test_existing_paragraphs_are_not_doubled():
    text = "<p>One.</p>\n\n<p>Two.</p>\n<p class=\"x\">Three.</p>"
    result = autop(text)
    assert result.count("<p") == 3
    assert "<p><p" not in result


def test_no_empty_paragraphs():
    assert autop("") == ""
    assert autop(" \n\n \t\n") == ""
    assert "<p></p>" not in autop("a\n\n\n \n\n<ul>\n<li>x</li>\n</ul>\n\n\n\nb")


def test_comments_stay_where_they_were():
    assert autop("Text <!-- a note --> more.\n\n<!-- alone -->") == (
        "<p>Text <!-- a note --> more.</p>\n<p><!-- alone --></p>\n"
    )


def test_newlines_inside_a_multiline_comment_are_not_breaks():
    assert autop("<!-- one\ntwo -->\nText") == "<p><!-- one\ntwo --><br />\nText</p>\n"


# --- texturize ------------------------------------------------------------------------------

# Inputs and what WordPress 6.1.9's wptexturize returned for them (the Debian package, run as
# is), with the entities WordPress wrote (&#8220; ...) as the characters they stand for.
WORDPRESS_6_1_TEXTURIZE = [
    ('He said, "It\'s 5 o\'clock -- time to go..."',
     "He said, “It’s 5 o’clock — time to go…”"),
    ("'Tis the season; 'twas the night, 'cause we're in the '90s.",
     "‘Tis the season; ’twas the night, ’cause we’re in the ’90s."),
    ('She\'s 5\'10" and the board is 6" wide; it\'s 12\' long.',
     "She’s 5’10” and the board is 6″ wide; it’s 12′ long."),
    ('"A 6" board," he said. "A 6" board"',
     "“A 6″ board,” he said. “A 6″ board”"),
    ('"The \'90s were \'rad\'," she said.',
     "“The ’90s were ‘rad’,” she said."),
    ("Rock 'n' roll (tm) - a 1920x1080 screen, 2x4s and 0x1A --- or not.",
     "Rock ‘n’ roll ™ – a 1920×1080 screen, 2x4s and 0x1A — or not."),
    ("Pages 10--20 at xn--bcher-kva.example; \"quoted,\" 'single,' and ``double''.",
     "Pages 10–20 at xn--bcher-kva.example; “quoted,” ‘single,’ and “double”."),
    ('<p>"Hello," <em>"world"</em> <a href="/x" title="it\'s &quot;x&quot;">link</a>\'s end</p>',
     '<p>“Hello,” <em>“world”</em> <a href="/x" title="it\'s &quot;x&quot;">link</a>‘s end</p>'),
    ('<b>it</b>\'s "<em>quoted</em>"',  # each run of text on its own, quirks included
     "<b>it</b>‘s “<em>quoted</em>“"),
    ('"42" and \'7\' and "1.5" are numbers; 6" and 7" are lengths.',
     "“42” and ‘7’ and “1.5” are numbers; 6″ and 7″ are lengths."),
    ('"a 2". 6 2" y', "“a 2”. 6 2″ y"),
    ('x "a 1" b 2" c 3" d', "x “a 1″ b 2″ c 3” d"),
    ("It was a'(b and a\"b and &amp; &#8220;you&#8221;.",
     "It was a'(b and a”b and &amp; &#8220;you&#8221;."),
    ('Space&nbsp;-&nbsp;dash and&nbsp;"quote" &lt;"tag"&gt;',
     "Space&nbsp;–&nbsp;dash and&nbsp;“quote” &lt;“tag”&gt;"),
    ('<pre>"raw" -- it\'s</pre> "after" <code>a--b</code> <kbd>"k"</kbd> <tt>"t"</tt>',
     '<pre>"raw" -- it\'s</pre> “after” <code>a--b</code> <kbd>"k"</kbd> <tt>"t"</tt>'),
    ('<style>a:after{content:"--"}</style><script>var s = "it\'s" -- 1;</script>"x"',
     '<style>a:after{content:"--"}</style><script>var s = "it\'s" -- 1;</script>“x”'),
    ('<!-- "comment" -- stays -->"x" -- y',
     '<!-- "comment" -- stays -->“x” — y'),
    ('[caption id="1" width="300" caption="it\'s"]<img src="a.jpg" alt="it\'s"> "Cap" -- it\'s[/caption]',
     '[caption id="1" width="300" caption="it\'s"]<img src="a.jpg" alt="it\'s"> “Cap” — it’s[/caption]'),
]


@pytest.mark.parametrize("text, expected", WORDPRESS_6_1_TEXTURIZE)
def test_texturize_matches_wordpress_6_1(text, expected):
    assert texturize(text) == expected


def test_no_texturize_elements_nest_and_end_only_at_their_own_closing_tag():
    assert texturize('<code><code>"a"</code>"b"</code>"c"') == '<code><code>"a"</code>"b"</code>“c”'
    assert texturize('<pre><code>"a"</pre>"b"</code>"c"') == '<pre><code>"a"</pre>"b"</code>"c"'
    assert texturize('<pre class="x">"a" -- b\n\'c\'') == '<pre class="x">"a" -- b\n\'c\''  # never closed
    assert texturize('<pre/>"a" </pre>"b"') == "<pre/>“a” </pre>“b”"  # self-closing opens nothing
    # Deliberate differences: any letter case (WordPress texturizes inside <PRE>); a script ends
    # at </script> (WordPress takes "<b && ...>" for a tag and texturizes nothing after it).
    assert texturize('<PRE>"a"</PRE> <Code>it\'s</Code>') == '<PRE>"a"</PRE> <Code>it\'s</Code>'
    assert texturize('<script>if (a<b && c) x = "--";</script> "d"') == (
        '<script>if (a<b && c) x = "--";</script> “d”'
    )


def test_attribute_values_are_never_touched():
    # (WordPress ends a tag at the first ">", even inside a quoted value: a deliberate difference.)
    text = ("<a href='https://example.org/a--b' title=\"it's &quot;x&quot; -- 5'10\" data-x=\"a > b\">"
            "'link'</a><img alt=\"don't...\" src=\"x.jpg\">")
    assert texturize(text) == (
        "<a href='https://example.org/a--b' title=\"it's &quot;x&quot; -- 5'10\" data-x=\"a > b\">"
        "‘link’</a><img alt=\"don't...\" src=\"x.jpg\">"
    )


def test_shortcode_tags_are_left_alone_but_what_they_enclose_is_text():
    # WordPress skips the tags of registered shortcodes; plugins' we keep as they were while the
    # plugin was active (WordPress without the plugin curls their quotes), and [code] as if it
    # were registered.
    text = ("[su_button url='x' title=\"it's\"]\"Press\" it[/su_button] "
            "[contact-form-7 id=\"1\" title=\"it's\"] [[gallery ids=\"1\"]] [gallery link='file']")
    assert texturize(text) == (
        "[su_button url='x' title=\"it's\"]“Press” it[/su_button] "
        "[contact-form-7 id=\"1\" title=\"it's\"] [[gallery ids=\"1\"]] [gallery link='file']"
    )
    # Prose in brackets is text; [code] encloses text that stays as written.
    assert texturize('[he said "no"] [sic] [code]"x" -- y[/code] "z"') == (
        '[he said “no”] [sic] [code]"x" -- y[/code] “z”'
    )


def test_entities_stay_as_they_are_and_count_as_what_they_are():
    text = 'AT&T\'s &amp; &copy; &#169; &#xA9; &hellip; a&nbsp;-- b "c"&nbsp;d &lt;\'e\'&gt;'
    assert texturize(text) == "AT&T’s &amp; &copy; &#169; &#xA9; &hellip; a&nbsp;— b “c”&nbsp;d &lt;‘e’&gt;"


def test_texturize_leaves_text_without_anything_to_do_alone():
    assert texturize("") == ""
    plain = "<p>Nothing to curl here, 42 of them.</p>\n<ul><li>x</li></ul>"
    assert texturize(plain) == plain


def test_texturize_text_reads_plain_text():
    assert texturize_text("Bob's \"blog\" -- the '90s...") == "Bob’s “blog” — the ’90s…"
    assert texturize_text('Why <"tags"> & such') == "Why <“tags”> & such"  # no markup in it
    assert texturize_text("<em>it's</em>") == "<em>it’s</em>"
    assert texturize_text("&nbsp;\"x\"") == "&nbsp;”x”"  # an entity is just characters here
    assert texturize_text("") == ""


def test_convert_post_content_texturizes_classic_and_block_content():
    assert html("\"Hello\" -- it's\n\n<pre>\"x\" -- 'y'</pre>\n\n'Bye'...") == (
        "<p>“Hello” — it’s</p>\n<pre>\"x\" -- 'y'</pre>\n<p>‘Bye’…</p>"
    )
    block = ('<!-- wp:paragraph -->\n<p>"Block" -- it\'s</p>\n<!-- /wp:paragraph -->\n'
             '<!-- wp:code -->\n<pre class="wp-block-code"><code>"x" -- y</code></pre>\n<!-- /wp:code -->')
    assert html(block) == '<p>“Block” — it’s</p>\n<pre class="wp-block-code"><code>"x" -- y</code></pre>'


def test_caption_text_is_texturized_but_not_a_caption_attribute_as_in_wordpress():
    # WordPress texturizes before it runs shortcodes: the text between [caption] and
    # [/caption] is texturized, the caption="..." attribute is not.
    assert html(f'[caption width="300"]{IMG} "Cap" -- it\'s[/caption]') == (
        f"<figure>{IMG}<figcaption>“Cap” — it’s</figcaption></figure>"
    )
    assert html(f'[caption width="300" caption="it\'s &quot;x&quot; -- y"]{IMG}[/caption]') == (
        f"<figure>{IMG}<figcaption>it's &quot;x&quot; -- y</figcaption></figure>"
    )


def test_gallery_captions_are_texturized_as_wordpress_does():
    attachments = {7: Attachment(7, "https://example.org/a.jpg", "It's", "The \"best\" -- it's")}
    assert html('[gallery ids="7"]', attachments) == (
        '<figure class="gallery"><figure><img src="https://example.org/a.jpg" alt="It&#x27;s">'
        "<figcaption>The “best” — it’s</figcaption></figure></figure>"
    )


def test_texturize_keeps_up_with_a_long_post():
    import time

    paragraph = ('"Well," she said -- it\'s 5\'10" -- "the \'90s were <em>\'rad\'</em>..." '
                 '<a href="https://example.org/x" title="it\'s">link</a> 2x4, 12\' long. ')
    post = "\n\n".join([paragraph * 2] * 12)  # about 7 KB, a quote every 10 characters
    start = time.perf_counter()
    texturize(post)
    assert time.perf_counter() - start < 0.25  # takes about 1 ms


# --- block editor ----------------------------------------------------------------------------

BLOCK_POST = """<!-- wp:paragraph -->
<p>A paragraph written in the block editor.</p>
<!-- /wp:paragraph -->

<!-- wp:latest-posts {"postsToShow":3,"displayPostDate":true} /-->

<!-- wp:heading {"level":3,"className":"x"} -->
<h3 class="x">A heading block</h3>
<!-- /wp:heading -->

<!-- wp:more -->
<!--more-->
<!-- /wp:more -->

<!-- wp:list -->
<ul><li>one</li><li>two</li></ul>
<!-- /wp:list -->"""


def test_block_editor_content_loses_its_delimiters_and_is_not_autopd():
    result = html(BLOCK_POST)
    assert "wp:" not in result
    assert "<p>A paragraph written in the block editor.</p>" in result
    assert '<h3 class="x">A heading block</h3>' in result
    assert "<ul><li>one</li><li>two</li></ul>" in result
    assert "<!--more-->" in result  # not a delimiter
    assert "<br />" not in result and "<p><" not in result  # autop did not run
    assert result.count("<p>") == 1


def test_freeform_text_in_block_content_is_left_as_is():
    text = "<!-- wp:paragraph -->\n<p>Block.</p>\n<!-- /wp:paragraph -->\n\nClassic\ntext"
    assert html(text) == "<p>Block.</p>\n\nClassic\ntext"


def test_strip_block_comments():
    text = ('<!-- wp:heading --><h2>Who</h2><!-- /wp:heading -->'
            '<!-- wp:my-plugin/box {"label":"a } b","n":1} -->inside<!-- /wp:my-plugin/box -->'
            '<!-- wp:archives /--><!-- a comment --><!--more--><!-- wp:this is a note -->')
    assert strip_block_comments(text) == "<h2>Who</h2>inside<!-- a comment --><!--more--><!-- wp:this is a note -->"
    assert strip_block_comments("<!-- wp:paragraph -->\n<p>A</p>\n<!-- /wp:paragraph -->\n") == "<p>A</p>\n"
    assert strip_block_comments("Text<!-- wp:spacer /-->\nmore") == "Text\nmore"


def test_a_shortcode_block_is_autopd_like_wordpress_does():
    result = convert_post_content('<!-- wp:shortcode -->\n[myplugin x="1"]\n<!-- /wp:shortcode -->')
    assert result == Converted('<p>[myplugin x="1"]</p>', ["myplugin"])


# --- captions --------------------------------------------------------------------------------

IMG = '<img src="https://example.org/x.jpg" alt="x" width="300" height="200" />'


def test_caption_becomes_a_figure_with_figcaption():
    text = f'[caption id="attachment_1" align="alignnone" width="300"]{IMG} A caption text[/caption]'
    assert html(text) == f"<figure>{IMG}<figcaption>A caption text</figcaption></figure>"


def test_caption_keeps_the_link_around_the_image():
    text = f'[caption id="attachment_1" width="300"]<a href="https://example.org/big.jpg">{IMG}</a> Linked[/caption]'
    assert html(text) == (
        f'<figure><a href="https://example.org/big.jpg">{IMG}</a><figcaption>Linked</figcaption></figure>'
    )


def test_caption_in_the_middle_of_a_paragraph_is_not_inside_a_p():
    text = f'Before the image [caption width="300"]{IMG} Cap[/caption] after it.\n\nNext.'
    assert html(text) == (
        f"<p>Before the image </p>\n<figure>{IMG}<figcaption>Cap</figcaption></figure>\n"
        "<p> after it.</p>\n<p>Next.</p>"
    )


def test_caption_inside_an_explicit_paragraph_is_taken_out_of_it():
    assert html(f'<p>[caption width="300"]{IMG} Cap[/caption]</p>') == (
        f"<figure>{IMG}<figcaption>Cap</figcaption></figure>"
    )


def test_caption_inside_a_block_editor_paragraph_is_taken_out_of_it():
    text = f'<!-- wp:paragraph -->\n<p>See [caption width="3"]{IMG} Cap[/caption] here.</p>\n<!-- /wp:paragraph -->'
    assert html(text) == f"<p>See </p><figure>{IMG}<figcaption>Cap</figcaption></figure><p> here.</p>"


def test_old_caption_attribute_form_and_wp_caption():
    old = f'[caption id="attachment_2" align="aligncenter" width="200" caption="Old &quot;style&quot;"]{IMG}[/caption]'
    assert html(old) == f"<figure>{IMG}<figcaption>Old &quot;style&quot;</figcaption></figure>"
    assert html(f'[wp_caption width="200"]{IMG} Older still[/wp_caption]') == (
        f"<figure>{IMG}<figcaption>Older still</figcaption></figure>"
    )


def test_caption_lines_break_like_the_rest_of_a_classic_post():
    text = f'[caption width="300"]{IMG} First line\nsecond line[/caption]'
    assert html(text) == f"<figure>{IMG}<figcaption>First line<br />\nsecond line</figcaption></figure>"
    block = f"<!-- wp:shortcode -->{text}<!-- /wp:shortcode --><!-- wp:html -->{text}<!-- /wp:html -->"
    assert html(block).endswith(f"<figure>{IMG}<figcaption>First line\nsecond line</figcaption></figure>")


def test_caption_without_a_width_shows_only_the_image_as_wordpress_does():
    assert html(f'[caption id="a"]{IMG} no width[/caption]') == f"<p>{IMG}</p>"


# --- galleries -------------------------------------------------------------------------------

ATTACHMENTS = {
    3: Attachment(3, "https://example.org/up/three.jpg", "Three", "", parent_id=10),
    1: Attachment(1, "https://example.org/up/one.jpg", "One & only", "<em>First</em> photo", parent_id=10),
    2: Attachment(2, "https://example.org/up/two.png", "Two", "", parent_id=11),
    4: Attachment(4, "https://example.org/up/notes.pdf", "Notes", "", parent_id=10),
    5: Attachment(5, "https://example.org/up/song.mp3", "Song", "", parent_id=10),
}
ONE = ('<figure><img src="https://example.org/up/one.jpg" alt="One &amp; only">'
       "<figcaption><em>First</em> photo</figcaption></figure>")
TWO = '<img src="https://example.org/up/two.png" alt="Two">'
THREE = '<img src="https://example.org/up/three.jpg" alt="Three">'


def test_gallery_by_ids_in_their_order_skipping_unknown_ids():
    result = convert_post_content('Look:\n\n[gallery ids="2,99,1" columns="2"]', ATTACHMENTS, 10)
    assert result == Converted(f'<p>Look:</p>\n<figure class="gallery">{TWO}{ONE}</figure>', [])


def test_gallery_without_ids_shows_the_posts_images_in_id_order():
    assert html("[gallery]", ATTACHMENTS, 10) == f'<figure class="gallery">{ONE}{THREE}</figure>'
    assert html('[gallery id="11"]', ATTACHMENTS, 10) == f'<figure class="gallery">{TWO}</figure>'


def test_gallery_with_nothing_to_show_vanishes_and_is_not_unknown():
    assert convert_post_content('Before\n\n[gallery ids="98,99"]\n\nAfter', ATTACHMENTS, 10) == (
        Converted("<p>Before</p>\n<p>After</p>", [])
    )
    assert convert_post_content("[gallery]", ATTACHMENTS, None) == Converted("", [])
    assert convert_post_content("[gallery]", {}, 10) == Converted("", [])


def test_gallery_linking_to_files():
    assert html('[gallery ids="3" link="file"]', ATTACHMENTS) == (
        f'<figure class="gallery"><a href="https://example.org/up/three.jpg">{THREE}</a></figure>'
    )


# --- other shortcodes ------------------------------------------------------------------------

def test_unknown_shortcodes_stay_as_written_and_are_counted_in_order():
    text = ('[contact-form-7 id="44" title="Contact form 1"]\n\n'
            "Text [su_button url='https://x.test/']Press[/su_button] and [myplugin foo=bar].\n\n"
            '[contact-form-7 id="45"]')
    result = convert_post_content(text)
    assert result.html == (
        '<p>[contact-form-7 id="44" title="Contact form 1"]</p>\n'
        "<p>Text [su_button url='https://x.test/']Press[/su_button] and [myplugin foo=bar].</p>\n"
        '<p>[contact-form-7 id="45"]</p>'
    )
    assert result.unknown_shortcodes == ["contact-form-7", "su_button", "myplugin", "contact-form-7"]


def test_enclosing_or_known_plugin_names_count_too():
    result = convert_post_content("[spoiler]It was him.[/spoiler] [youtube] [clear /]")
    assert result.unknown_shortcodes == ["spoiler", "youtube", "clear"]
    assert result.html == "<p>[spoiler]It was him.[/spoiler] [youtube] [clear /]</p>"


def test_prose_in_brackets_is_not_counted():
    text = "He wrote [sic] twice [1], [citation needed] and [Note] [2-3]; see [[sic]]."
    assert convert_post_content(text) == Converted(f"<p>{text}</p>", [])


def test_escaped_shortcodes_show_literally_and_are_not_counted():
    text = 'Type [[gallery]] or [[caption]x[/caption]] or [[contact-form-7 id="1"]].'
    assert convert_post_content(text, ATTACHMENTS, 10) == Converted(
        '<p>Type [gallery] or [caption]x[/caption] or [contact-form-7 id="1"].</p>', []
    )


def test_shortcodes_in_code_comments_and_attributes_are_left_alone():
    text = ('<pre>[gallery]\n[foo_bar x="1"]</pre>\n\nUse <code>[caption width="1"]</code>.'
            ' <a title="[foo_bar]" href="/x">t</a> <!-- [foo_bar] -->')
    assert convert_post_content(text, ATTACHMENTS, 10) == Converted(
        '<pre>[gallery]\n[foo_bar x="1"]</pre>\n<p>Use <code>[caption width="1"]</code>.'
        ' <a title="[foo_bar]" href="/x">t</a> <!-- [foo_bar] --></p>', []
    )


def test_plugin_shortcode_around_a_caption_still_gets_the_figure():
    result = convert_post_content(f'[su_box][caption width="3"]{IMG} Cap[/caption][/su_box]')
    assert result == Converted(
        f"<p>[su_box]</p>\n<figure>{IMG}<figcaption>Cap</figcaption></figure>\n<p>[/su_box]</p>", ["su_box"]
    )


def test_embed_shortcode_and_a_url_alone_on_its_line_become_links():
    text = ("My talk:\nhttps://www.youtube.com/watch?v=abc&amp;t=10\nenjoy.\n\n"
            "[embed width=\"500\"]https://vimeo.com/123[/embed]\n\n"
            "A link in a sentence https://example.org/ stays text.")
    assert html(text) == (
        "<p>My talk:</p>\n"
        '<p><a href="https://www.youtube.com/watch?v=abc&amp;t=10">https://www.youtube.com/watch?v=abc&amp;t=10</a></p>\n'
        "<p>enjoy.</p>\n"
        '<p><a href="https://vimeo.com/123">https://vimeo.com/123</a></p>\n'
        "<p>A link in a sentence https://example.org/ stays text.</p>"
    )


def test_embed_block_url_becomes_a_link():
    text = ('<!-- wp:embed {"url":"https://youtu.be/x","type":"video"} -->\n'
            '<figure class="wp-block-embed"><div class="wp-block-embed__wrapper">\nhttps://youtu.be/x\n</div></figure>\n'
            "<!-- /wp:embed -->\n\n<!-- wp:paragraph -->\n<p>https://example.org/alone</p>\n<!-- /wp:paragraph -->")
    assert html(text) == (
        '<figure class="wp-block-embed"><div class="wp-block-embed__wrapper">\n'
        '<p><a href="https://youtu.be/x">https://youtu.be/x</a></p>\n</div></figure>\n\n'
        '<p><a href="https://example.org/alone">https://example.org/alone</a></p>'
    )


def test_audio_and_video_become_links_to_the_files():
    text = ('Listen: [audio src="https://example.org/a.mp3"] or watch '
            '[video width="640" mp4="https://example.org/v.mp4"][/video]\n\n[audio]')
    assert convert_post_content(text, ATTACHMENTS, 10) == Converted(
        '<p>Listen: <a href="https://example.org/a.mp3">https://example.org/a.mp3</a> or watch '
        '<a href="https://example.org/v.mp4">https://example.org/v.mp4</a></p>\n'
        '<p><a href="https://example.org/up/song.mp3">https://example.org/up/song.mp3</a></p>',
        [],
    )


def test_odd_markup_leaves_no_placeholders_behind():
    # A <pre> that opens inside a comment: the gallery is replaced, then autop sets the
    # "<pre>" aside with the gallery's placeholder inside it.
    result = html('<!--<pre>-->[gallery ids="3"]</pre>', ATTACHMENTS)
    assert THREE in result
    assert not any(ch in result for ch in "\x00\x01\x02\x03\x04\x05")
    assert html("a\x01b\x02c\x00") == "<p>abc</p>"


def test_attachment_urls_are_not_fetched_or_rewritten(monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("convert_post_content touched the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    assert "https://example.org/up/one.jpg" in html('[gallery ids="1"]\n\nhttps://youtu.be/x', ATTACHMENTS)


# --- a whole post ----------------------------------------------------------------------------

CLASSIC_POST = """When I opened my practice in 2009 I had a phone, a rented room and a <a href="https://example.org/guide">guide</a>.
That was it.

The first year taught me three things:
<ul>
	<li>People come back when you remember their names.</li>
	<li>People refer friends when you <em>return calls</em>.</li>
	<li>Nobody reads the brochure.</li>
</ul>
[caption id="attachment_12" align="alignright" width="300"]<a href="https://example.org/office.jpg"><img class="size-medium wp-image-12" src="https://example.org/office-300x200.jpg" alt="The office" width="300" height="200" /></a> The office, on the first day.[/caption]

<blockquote>A practice is a garden, not a machine.
You tend it every day.</blockquote>

<strong>Keep a notebook.</strong> A paper one. [gallery ids="3,1"]

[contact-form-7 id="44" title="Contact form 1"]

<!--more-->

Thanks for reading.
"""

# What WordPress 6.1.9 showed for this post (wpautop, shortcode_unautop, do_shortcode), but for
# the figures, which we write without WordPress's ids, classes and inline widths, and the
# gallery, which we do not put inside the paragraph.
CLASSIC_POST_HTML = """<p>When I opened my practice in 2009 I had a phone, a rented room and a <a href="https://example.org/guide">guide</a>.<br />
That was it.</p>
<p>The first year taught me three things:</p>
<ul>
<li>People come back when you remember their names.</li>
<li>People refer friends when you <em>return calls</em>.</li>
<li>Nobody reads the brochure.</li>
</ul>
<figure><a href="https://example.org/office.jpg"><img class="size-medium wp-image-12" src="https://example.org/office-300x200.jpg" alt="The office" width="300" height="200" /></a><figcaption>The office, on the first day.</figcaption></figure>
<blockquote><p>A practice is a garden, not a machine.<br />
You tend it every day.</p></blockquote>
<p><strong>Keep a notebook.</strong> A paper one. </p>
<figure class="gallery"><img src="https://example.org/up/three.jpg" alt="Three"><figure><img src="https://example.org/up/one.jpg" alt="One &amp; only"><figcaption><em>First</em> photo</figcaption></figure></figure>
<p>[contact-form-7 id="44" title="Contact form 1"]</p>
<p><!--more--></p>
<p>Thanks for reading.</p>"""


def test_a_classic_post_end_to_end():
    result = convert_post_content(CLASSIC_POST, ATTACHMENTS, 10)
    assert result.html == CLASSIC_POST_HTML
    assert result.unknown_shortcodes == ["contact-form-7"]


def test_the_same_post_with_windows_newlines_reads_the_same():
    assert html(CLASSIC_POST.replace("\n", "\r\n"), ATTACHMENTS, 10) == CLASSIC_POST_HTML
