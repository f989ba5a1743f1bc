-- Accounts meeting an account condition (people test their account against it).
SELECT b.subject_id FROM segment_account_base AS b WHERE /*condition*/
