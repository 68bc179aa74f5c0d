-- MLflow's backend store lives beside Flowgate's database on the same server.
CREATE DATABASE mlflow OWNER flowgate;
