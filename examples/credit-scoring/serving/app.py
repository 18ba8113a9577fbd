"""Public scoring API of the credit-scoring example (scanned by mlthreat, never run by it)."""

import joblib
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI(title="credit scoring")
model = joblib.load("models/credit_model.joblib")


class Application(BaseModel):
    income: float
    debt: float
    age: float
    seniority: float


@app.post("/v1/score")
def score(application: Application) -> dict[str, float | str]:
    features = [[application.income, application.debt, application.age, application.seniority]]
    probability = float(model.predict_proba(features)[0][1])
    return {"decision": "reject" if probability > 0.5 else "approve",
            "default_probability": probability}


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="0.0.0.0", port=8000)
