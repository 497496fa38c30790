/* placeholder: being written */
int rf_placeholder_event;
