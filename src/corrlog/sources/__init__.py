"""Sources: where items come from (notes folders, Maildir, IMAP); each owns its cursor."""
