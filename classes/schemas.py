from accounts.schemas import Name, NonEmptyStr, RequestBody


class CreateClassBody(RequestBody):
    className: Name


class AddStudentBody(RequestBody):
    studentId: NonEmptyStr
