"""Sixteen realistic support tickets of 30 to 75 words, written by hand for the cost table."""

from __future__ import annotations

SHORT_TICKETS = (
    "Hi, I was charged twice for my Pro subscription this month, once on the 3rd and again on"
    " the 4th. Both charges show on my Visa statement. Can you refund the duplicate and confirm"
    " it won't happen again next month? Thanks, Dana",
    "Our dashboard has been throwing a 502 error since about 9am UTC. Nobody on the team can"
    " load the reports page, though the API still answers. We have a client demo this"
    " afternoon, so please tell us if this is a known outage.",
    "I can't log in anymore. I reset my password twice, the reset email arrives, but after I"
    " pick a new password the login page just says 'invalid credentials'. I'm using Chrome on a"
    " Mac. My username is jlee@northwind.io.",
    "Do you offer a discount for non-profit organisations? We are a small charity with eight"
    " staff and would like to move from the monthly plan to the annual one if the price works"
    " for our budget.",
    "The invoice for October lists our old company address in Leeds. We moved to Manchester in"
    " August and updated the profile then. Could you reissue the invoice with the new address?"
    " Our accountant needs it before the quarter closes.",
    "Webhooks stopped arriving at our endpoint yesterday evening. Our server logs show no"
    " incoming requests at all, and the integration page still says 'active'. We rotated our"
    " TLS certificate around the same time, in case that matters.",
    "Please add my colleague Priya Nair as an admin on our team account. She already has a user"
    " but only with viewer rights, and I can't find where to change roles in the new settings"
    " screen.",
    "Just wanted to say the new export feature is great, it saved us hours this week. One"
    " suggestion: could the CSV include the ticket tags as a column? That would make our weekly"
    " report complete.",
    "We were billed for 25 seats but only have 18 active members. Three people left in"
    " September and we removed them the same day. Please correct the seat count and credit the"
    " difference to our next invoice.",
    "The mobile app crashes as soon as I open an attachment larger than about 10 MB. It happens"
    " on two different Android phones running the latest version. Smaller files open fine."
    " Crash report ID is 7F3A-22C1.",
    "I need to change the email address on my account from my personal Gmail to my work"
    " address. When I try, it says the new address is already in use, but I never created"
    " another account with it.",
    "What are your business hours for phone support, and is there a number for customers in"
    " Australia? The website only lists a US number and the time difference makes it hard to"
    " call during your day.",
    "Our card payment was declined on renewal, but the bank says there was no attempt on their"
    " side. The card is valid until 2028. Can you retry the charge or send a payment link so"
    " the account isn't suspended?",
    "Since this morning API requests to the search endpoint time out after 30 seconds, while"
    " other endpoints respond normally. Our quota page shows we are well within limits. Request"
    " IDs: a81f02, a81f77, a82c10.",
    "Two-factor authentication codes from the app are always rejected. My phone's clock is set"
    " automatically and I re-scanned the QR code, but it still fails. I'm locked out of the"
    " admin console for our whole organisation.",
    "Is it possible to get a demo of the enterprise plan for our operations team next week? We"
    " are comparing three vendors and would like to see the audit log and single sign-on"
    " features before deciding.",
)
"""Four per label of the article's four (Billing, Technical, Account, General), mixed."""
