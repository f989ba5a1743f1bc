-- The members of one segment: its base's subjects meeting the compiled condition.
SELECT b.subject_id FROM {{ident:base}} AS b WHERE /*condition*/ ORDER BY 1
