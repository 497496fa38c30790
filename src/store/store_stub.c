int rf_store_stub_;
