/* placeholder: being written */
int rf_placeholder_store_sqlite;
