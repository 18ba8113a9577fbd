"""Public scoring API of the credit-scoring example (scanned by mlthreat, never run by it)."""

import joblib
import pandas as pd
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI(title="credit scoring")
model = joblib.load("models/credit_model.joblib")


class Application(BaseModel):
    Seniority: int
    Home: str
    Time: int
    Age: int
    Marital: str
    Records: str
    Job: str
    Expenses: int
    Income: float | None
    Assets: float | None
    Debt: float | None
    Amount: int
    Price: int


@app.post("/v1/score")
def score(application: Application) -> dict[str, float | str]:
    features = pd.DataFrame([application.model_dump()])
    probability = float(model.predict_proba(features)[0][1])
    return {"decision": "reject" if probability > 0.5 else "approve",
            "default_probability": probability}


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="0.0.0.0", port=8000)
